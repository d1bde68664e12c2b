-- Blobs stored whole before chunking (migration 12) are split into chunks in the
-- background (store/blobs/rechunk.rs), so their downloads stream too; this is how far
-- that pass has got, in blake3 order.
CREATE TABLE blob_rechunk_progress (
    after_blake3 TEXT    NOT NULL,
    done         BOOLEAN NOT NULL
);
INSERT INTO blob_rechunk_progress (after_blake3, done) VALUES ('', FALSE);
