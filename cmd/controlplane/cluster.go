package main

import (
	"strings"
	"time"

	"switchyard/primary"
	"switchyard/store"
)

// Several control planes on one PostgreSQL database: which one is the
// primary (it drives the rollouts and records the boards' history), and
// the names and tags the others set.

// shared reports whether other control planes may share the database.
func (c *Config) shared() bool { return strings.HasPrefix(c.databaseURL(), "postgres") }

// sharedPoll is how often the gateway reads again the logouts, names and
// tags other control planes sharing the database set (sharedRefresh), or
// 0: nobody else writes them.
func (c *Config) sharedPoll() time.Duration {
	if c.shared() {
		return sharedRefresh
	}
	return 0
}

// openRole starts the election of the primary on a shared database; on
// SQLite this control plane is the only one, primary for good.
func openRole(cfg *Config, db *store.DB, httpPort int, u *updateSide) (*primary.Elector, error) {
	var st primary.Store
	if cfg.shared() {
		st = db
	}
	return primary.New(primary.Config{
		Holder:     clientID(cfg, httpPort), // one name for this control plane, at the broker and in the lease
		Logger:     u.log.With("component", "primary"),
		Registerer: u.reg,
	}, st)
}
