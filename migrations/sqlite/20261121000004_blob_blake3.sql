-- Blobs are addressed by BLAKE3 instead of SHA-256: hashing every part with SHA-256 was
-- the largest CPU cost of ingesting attachments on CPUs without SHA extensions.
ALTER TABLE blobs RENAME COLUMN sha256 TO blake3;
