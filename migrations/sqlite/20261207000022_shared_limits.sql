-- On SQLite one instance owns the database, so the rate limits and lockouts stay in its
-- memory; PostgreSQL's migration of this version creates the tables that several
-- instances share. This one only keeps the two engines' versions matching.
SELECT 1;
