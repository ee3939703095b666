package main

import (
	"net"
	"time"

	"switchyard/accounts"
	"switchyard/auth"
	"switchyard/devices"
)

// The onboarding and user API's wiring: the users and boards created at
// run time, loaded into the user list before the broker takes clients,
// their routes on the gateway, and the kicks of revoked users.

// sharedRefresh is how often a control plane on PostgreSQL reads again
// what other control planes may have changed: users and boards, logouts,
// names and tags (Config.sharedPoll).
const sharedRefresh = 5 * time.Second

// openAccounts loads the users created at run time from the database into
// the user list and returns the service; call it before the broker
// starts, and Attach the gateway once it exists.
func openAccounts(cfg *Config, topics devices.Topics, mq mqttSide, ups *updateSide) (*accounts.Service, error) {
	configDevices := map[string]string{}
	for _, u := range cfg.Auth.Users {
		if u.Role != auth.RoleDevice.String() {
			continue
		}
		ids := u.IDs
		if len(ids) == 0 {
			ids = []string{u.Name}
		}
		for _, id := range ids {
			configDevices[id] = u.Name
		}
	}
	var audit accounts.Auditor
	if ups.rec != nil {
		audit = ups.rec
	}
	return accounts.New(accounts.Config{
		Store:         ups.db,
		Auth:          cfg.az,
		Kicker:        kicker{mq, &ups.events},
		Audit:         audit,
		ConfigDevices: configDevices,
		Broker:        boardBroker(cfg, mq),
		UpdateKey:     ups.svc.PublicKey(),
		Prefix:        topics.Prefix(),
		Refresh:       cfg.sharedPoll(),
		Logger:        ups.log.With("component", "accounts"),
	})
}

// boardBroker says how boards reach the MQTT broker: the external
// broker's URL, or the embedded broker's TCP port (its TLS port when TCP
// listens on loopback only and TLS is on) at the host of http.public_url
// or of the admin's request.
func boardBroker(cfg *Config, mq mqttSide) accounts.BrokerConfig {
	b := accounts.BrokerConfig{PublicURL: cfg.HTTP.PublicURL}
	e, ok := mq.(embedded)
	if !ok {
		b.URL = cfg.MQTT.URL
		return b
	}
	if a, ok := e.TLSAddr().(*net.TCPAddr); ok {
		b.TLSPort = a.Port
	}
	if a, ok := e.Addr().(*net.TCPAddr); ok && !(a.IP.IsLoopback() && b.TLSPort != 0) {
		b.TCPPort = a.Port
	}
	return b
}

// kicker disconnects a user's MQTT clients (embedded broker only: an
// external broker's clients are not ours) and browsers (once the gateway
// is set).
type kicker struct {
	mq mqttSide
	gw *lateGateway
}

func (k kicker) DisconnectUser(name string) int {
	if e, ok := k.mq.(embedded); ok {
		return e.DisconnectUser(name)
	}
	return 0
}

func (k kicker) CloseUser(name string) {
	if gw := k.gw.gw.Load(); gw != nil {
		gw.CloseUser(name)
	}
}
