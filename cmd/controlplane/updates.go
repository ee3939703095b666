package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/devices"
	"switchyard/history"
	"switchyard/primary"
	"switchyard/recorder"
	"switchyard/store"
	"switchyard/updates"
	"switchyard/wsgateway"
)

// The update service's wiring: the database, the firmware files, the key
// and the service, its routes on the gateway and its events to browsers.

// updateSide is the update service with the database and the firmware
// files it keeps its records and builds in.
type updateSide struct {
	svc *updates.Service
	db  *store.DB
	rec *recorder.Recorder // the history and audit log; nil when history.enabled is false
	// role says whether this control plane is the primary of its
	// database (see cluster.go).
	role *primary.Elector
	log  *slog.Logger
	tmp  string // the firmware directory made for a run without storage; removed by Close
	// reg holds the service's metrics, served on /metrics by the gateway.
	reg *prometheus.Registry
	// events forwards the service's rollout events to the gateway, which
	// is made after the service (it serves the service's routes), and
	// asks it for the boards with a tag.
	events lateGateway
}

// openUpdates opens the database (database.url), the update key (beside
// the storage file, or in the database when it is shared) and the
// firmware files (firmware/ beside the storage file, a temporary
// directory when storage is off), and starts the update service.
func openUpdates(cfg *Config, topics devices.Topics, mq mqttSide, scheme string, httpPort int, log *slog.Logger) (_ *updateSide, err error) {
	u := &updateSide{reg: prometheus.NewRegistry(), log: log}
	defer func() {
		if err != nil {
			u.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if u.db, err = store.Open(ctx, cfg.databaseURL(), store.Options{Logger: log.With("component", "store")}); err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	var key ed25519.PrivateKey
	if cfg.shared() { // the other control planes on it sign with the same key
		key, err = sharedUpdateKey(ctx, u.db, cfg.Storage.Path, u.db.String())
	} else {
		var persisted bool
		key, persisted, err = loadUpdateKey(cfg.Storage.Path)
		if err == nil && !persisted {
			log.Warn("storage.path is empty: the update key lives in memory and changes at every start, so no board can pin it; set storage.path to update boards")
		}
	}
	if err != nil {
		return nil, err
	}
	if u.role, err = openRole(cfg, u.db, httpPort, u); err != nil {
		return nil, err
	}
	dir := cfg.firmwareDir()
	if dir == "" {
		if u.tmp, err = os.MkdirTemp("", "switchyard-firmware-"); err != nil {
			return nil, fmt.Errorf("firmware directory: %w", err)
		}
		dir = u.tmp
	}
	files, err := store.NewFiles(dir)
	if err != nil {
		return nil, err
	}
	var audit updates.Auditor
	if cfg.History.Enabled {
		u.rec, err = recorder.New(recorder.Config{
			Retention:  cfg.History.Retention,
			Known:      u.events.known,
			Role:       u.role,
			Logger:     log.With("component", "history"),
			Registerer: u.reg,
		}, u.db)
		if err != nil {
			return nil, err
		}
		audit = u.rec
	}
	u.svc, err = updates.New(updates.Config{
		Audit:       audit,
		Store:       u.db,
		Files:       files,
		Publisher:   mq,
		Broadcaster: &u.events,
		Topics:      topics,
		Key:         key,
		MaxSize:     cfg.maxFirmware,
		PublicURL:   cfg.HTTP.PublicURL,
		BoardAddr:   mq.boardAddr(),
		HTTPScheme:  scheme,
		HTTPPort:    httpPort,
		Groups:      cfg.Groups,
		Tags:        u.events.tagged,
		Role:        u.role,
		Logger:      log.With("component", "updates"),
		Registerer:  u.reg,
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Close stops the service and writes the last of the history, then
// closes the database; it may be called again.
func (u *updateSide) Close() {
	if u.svc != nil {
		u.svc.Close()
	}
	if u.rec != nil {
		if err := u.rec.Close(); err != nil {
			u.log.Error("history: the last records were not written", "err", err)
		}
	}
	if u.role != nil {
		u.role.Close() // after the last saves: releases the lease, another takes over at once
	}
	if u.db != nil {
		u.db.Close()
	}
	if u.tmp != "" {
		os.RemoveAll(u.tmp)
	}
}

// lateGateway passes events to the gateway once it is set (events before
// that have no browser to go to), and asks it for the boards with a tag
// (none before: no rollout starts before the gateway serves).
type lateGateway struct {
	gw atomic.Pointer[wsgateway.Gateway]
}

func (l *lateGateway) Broadcast(event []byte) {
	if gw := l.gw.Load(); gw != nil {
		gw.Broadcast(event)
	}
}

// lateAudit passes audit entries to the recorder once it is set (the
// broker, which audits refused CONNECTs, is made before the database; it
// takes no client before the recorder is set).
type lateAudit struct {
	rec atomic.Pointer[recorder.Recorder]
}

func (l *lateAudit) audit(e history.Entry) {
	if r := l.rec.Load(); r != nil {
		r.Audit(e)
	}
}

// known reports whether the gateway knows board id (none before it is set).
func (l *lateGateway) known(id string) bool {
	if gw := l.gw.Load(); gw != nil {
		return gw.Known(id)
	}
	return false
}

func (l *lateGateway) tagged(tag string) []string {
	if gw := l.gw.Load(); gw != nil {
		return gw.Tagged(tag)
	}
	return nil
}

// routes serves the update service's handlers, and the history's when it
// is on, behind the gateway's access rules.
func (u *updateSide) routes() []wsgateway.Route {
	out := u.svc.Handlers() // the services' routes are httpapi.Routes, as the gateway's
	if u.rec != nil {
		out = append(out, u.rec.Handlers()...)
	}
	return out
}

// history returns the recorder as the gateway's History and Auditor, or
// nils when history is off (never an interface holding a nil pointer).
func (u *updateSide) history() (wsgateway.History, wsgateway.Auditor) {
	if u.rec == nil {
		return nil, nil
	}
	return u.rec, u.rec
}
