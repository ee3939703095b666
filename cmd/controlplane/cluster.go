package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"switchyard/primary"
	"switchyard/store"
	"switchyard/wsgateway"
)

// Several control planes on one PostgreSQL database: which one is the
// primary (it drives the rollouts and records the boards' history), and
// the names and tags the others set.

// shared reports whether other control planes may share the database.
func (c *Config) shared() bool { return strings.HasPrefix(c.databaseURL(), "postgres") }

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

// metaRefresher reloads, every sharedRefresh, the names and tags other
// control planes sharing the database set.
type metaRefresher struct {
	stop chan struct{}
	done chan struct{}
}

// startMetaRefresh starts reloading gw's names and tags; Close stops it.
func startMetaRefresh(gw *wsgateway.Gateway, log *slog.Logger) *metaRefresher {
	m := &metaRefresher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() { // ends when Close closes stop
		defer close(m.done)
		t := time.NewTicker(sharedRefresh)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), sharedRefresh)
			err := gw.ReloadMeta(ctx)
			cancel()
			if err != nil && !failing {
				log.Warn("names and tags set by other control planes not reloaded; trying again", "err", err)
			}
			failing = err != nil
		}
	}()
	return m
}

// Close stops the reloads; it may be called again, and on a nil one.
func (m *metaRefresher) Close() {
	if m == nil {
		return
	}
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}
