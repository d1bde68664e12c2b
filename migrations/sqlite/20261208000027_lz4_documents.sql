-- SQLite stores documents uncompressed; PostgreSQL's migration of this version moves
-- them from pglz to LZ4. This one only keeps the two engines' versions matching.
SELECT 1;
