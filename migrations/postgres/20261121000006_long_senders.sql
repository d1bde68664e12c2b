-- A B-tree entry holds at most about 2,700 bytes, so an email whose sender address was
-- longer failed to store (and ImprovMX dropped it after its retries). The sender filter
-- now goes through an index on the address's MD5 (fixed size, not a security use), and
-- the query compares the full value too.
DROP INDEX emails_by_sender;
CREATE INDEX emails_by_sender_digest ON emails (md5(from_email), received_at DESC, id DESC);
