-- Large part bytes in chunks of 1 MiB (store/blobs.rs), so that a download streams
-- them instead of loading a whole attachment into memory. A chunked blob's own row keeps
-- its size and no bytes; blobs stored before this keep their bytes where they are.
CREATE TABLE blob_chunks (
    blob     TEXT    NOT NULL,  -- blobs.blake3
    position INTEGER NOT NULL,  -- from 0
    data     BLOB   NOT NULL,
    PRIMARY KEY (blob, position)
);
