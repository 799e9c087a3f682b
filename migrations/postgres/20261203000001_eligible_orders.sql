-- The GraphQL eligible-user lists page by keyset in every order they offer: by name (and id)
-- and by last activity (no activity first, id descending among equals; read backwards for the
-- reverse order). Without these a page sorts every eligible user.
CREATE INDEX users_name_id ON users (name, id);
CREATE INDEX users_last_activity_id ON users (last_activity_on ASC NULLS FIRST, id DESC);
