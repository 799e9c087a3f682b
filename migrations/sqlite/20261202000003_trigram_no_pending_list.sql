-- PostgreSQL only (its trigram indexes' pending list); kept so that both backends share one
-- schema version, which backups record.
SELECT 1;
