-- The dormant-user preview and job read the users who may be dormant — active humans and
-- service users — as ranges of these indexes, instead of the whole table: by last activity,
-- and, for those never active, by creation (an index of their own, so that PostgreSQL reads
-- them in creation order rather than sorting them).
CREATE INDEX users_dormant ON users (last_activity_on, created_at, id)
    WHERE state = 'active' AND user_type IN ('human', 'service_user');
CREATE INDEX users_never_active ON users (created_at, id)
    WHERE state = 'active' AND user_type IN ('human', 'service_user') AND last_activity_on IS NULL;
