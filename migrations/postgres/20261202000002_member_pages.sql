-- A group's members page by page in id order (GET /groups/:id/members) without sorting every
-- membership of a large group: the index walks one group's rows already in that order.
CREATE INDEX members_source_id ON members (source_type, source_id, id);
