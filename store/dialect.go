package store

import (
	"strconv"
	"strings"
)

// dialect is what differs between SQLite and PostgreSQL in the SQL this
// package writes. Queries are written once, with ? placeholders, and pass
// through q; schema steps name their types as {int64}, {blob} and
// {serial}, which schema replaces, and end a table that needs no rowid of
// SQLite's with {without rowid}.
type dialect struct {
	name   string // "sqlite" or "postgres"
	dollar bool   // placeholders are $1, $2…
	types  *strings.Replacer
	// now is an expression of the database's clock in unix
	// nanoseconds (leases run on it, not on the callers' clocks).
	now string
}

var (
	sqliteDialect = dialect{
		name: "sqlite",
		types: strings.NewReplacer(
			"{int64}", "INTEGER", // SQLite's integers are 64-bit
			"{blob}", "BLOB",
			"{serial}", "INTEGER PRIMARY KEY", // the rowid: assigned when inserted as NULL
			"{without rowid}", " WITHOUT ROWID", // the table is its primary key's b-tree
		),
		// julianday's double resolves about 50 µs today.
		now: `CAST((julianday('now') - 2440587.5) * 86400000000000.0 AS INTEGER)`,
	}
	postgresDialect = dialect{
		name:   "postgres",
		dollar: true,
		types: strings.NewReplacer(
			"{int64}", "BIGINT",
			"{blob}", "BYTEA",
			"{serial}", "BIGSERIAL PRIMARY KEY",
			"{without rowid}", "",
		),
		// clock_timestamp, not now(): the time of the statement, not of
		// its transaction's start.
		now: `CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000 AS BIGINT)`,
	}
)

// q returns query with its ? placeholders as the dialect writes them. The
// queries of this package hold no ? inside string literals.
func (d dialect) q(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// schema returns a schema step with the dialect's types.
func (d dialect) schema(step string) string { return d.types.Replace(step) }
