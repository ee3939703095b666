// Command controlplane runs Switchyard's control plane: an embedded MQTT
// broker for the boards, and the dashboard, WebSocket gateway and REST API
// for browsers and tools. It only wires the packages together.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"switchyard/devices"
	"switchyard/homeassistant"
	"switchyard/wsgateway"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	spareProcs()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run is the program; it returns the exit status. stop, when not nil,
// replaces the signals as the reason to shut down (for tests).
func run(args []string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	if len(args) > 0 {
		switch args[0] {
		case "hash-password":
			return hashPassword(os.Stdin, stdout, stderr)
		case "new-token":
			return newToken(stdout, stderr)
		case "update-key":
			return updateKeyCmd(args[1:], stdout, stderr)
		}
	}
	fl := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	fl.SetOutput(stderr)
	load := configFlag(fl)
	showVersion := fl.Bool("version", false, "print the version and exit")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if *showVersion {
		fmt.Fprintln(stdout, "controlplane", version)
		return 0
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, "controlplane:", err)
		return 1
	}
	if err := serve(cfg, stderr, stop); err != nil {
		fmt.Fprintln(stderr, "controlplane:", err)
		return 1
	}
	return 0
}

// configFlag adds --config to fl; the function it returns loads the file
// that names (a missing ./config.yaml is no error unless --config named
// it) with the environment's overrides.
func configFlag(fl *flag.FlagSet) func() (*Config, error) {
	path := fl.String("config", "config.yaml", "configuration file (YAML)")
	return func() (*Config, error) {
		explicit := false
		fl.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
		return loadConfig(*path, explicit, environ())
	}
}

// serve builds everything, serves until a signal (or stop), then closes in
// reverse order.
func serve(cfg *Config, stderr io.Writer, stop <-chan struct{}) error {
	// Take SIGINT and SIGTERM before anything listens: a signal that
	// arrives once the "serving" line is out (a supervisor or a test that
	// stops it at once) must shut down cleanly, not kill the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return fmt.Errorf("config: log.level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range cfg.warnings {
		log.Warn("config: " + w)
	}
	topics, err := devices.NewTopics(cfg.Topics.Prefix)
	if err != nil {
		return fmt.Errorf("config: topics.prefix: %w", err)
	}
	az := cfg.az
	metrics, err := wsgateway.ParseMetricsAccess(cfg.HTTP.Metrics)
	if err != nil {
		return fmt.Errorf("config: http.metrics: %w", err)
	}
	var tlsCfg *tls.Config
	if cfg.HTTP.TLS || cfg.MQTT.TLSListen != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("config: tls.cert_file/tls.key_file: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", cfg.HTTP.Listen, err)
	}
	defer httpLn.Close()
	scheme := "http"
	if cfg.HTTP.TLS {
		httpLn = tls.NewListener(httpLn, tlsCfg)
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(httpLn.Addr().String())
	httpPort, _ := strconv.Atoi(port)

	var brokerAudit lateAudit // the broker is made before the database it audits to
	mq, err := openMQTT(cfg, topics, az, tlsCfg, brokerAudit.audit, httpPort, log)
	if err != nil {
		return err
	}
	defer mq.Close()

	ups, err := openUpdates(cfg, topics, mq, scheme, httpPort, log)
	if err != nil {
		return err
	}
	defer ups.Close()
	if ups.rec != nil {
		brokerAudit.rec.Store(ups.rec)
	}
	sessionKey, revoked, err := sessionSecrets(cfg, ups.db, log)
	if err != nil {
		return err
	}
	acc, err := openAccounts(cfg, topics, mq, ups) // before the broker starts: created users log in at once
	if err != nil {
		return err
	}
	defer acc.Close()

	var disc *homeassistant.Discovery
	var observer wsgateway.Observer
	if cfg.HomeAssistant.Enabled {
		disc = homeassistant.New(topics, cfg.HomeAssistant.Prefix, mq, log.With("component", "homeassistant"))
		defer disc.Close()
		observer = disc
	}

	hist, audit := ups.history()
	gw, err := wsgateway.New(wsgateway.Config{
		Writers:         cpus,
		Routes:          append(ups.routes(), acc.Handlers()...),
		Adopted:         acc.Adopted,
		Forgetting:      acc.Forgetting,
		History:         hist,
		Audit:           audit,
		Snapshot:        ups.svc.Snapshot,
		Gatherer:        ups.reg,
		Observer:        observer,
		Groups:          cfg.Groups,
		CommandTimeout:  cfg.Commands.Timeout,
		Topics:          topics,
		Declared:        cfg.declared(),
		Meta:            ups.db, // names and tags set at run time win over Declared's
		AllowedOrigins:  cfg.HTTP.AllowedOrigins,
		Auth:            az,
		SessionKey:      sessionKey,
		RevokedSessions: revoked,
		SharedPoll:      cfg.sharedPoll(),
		SessionTTL:      cfg.HTTP.SessionTTL,
		SecureCookies:   cfg.HTTP.TLS,
		Metrics:         metrics,
		MaxBrowsers:     cfg.Limits.MaxBrowsers,
		MaxDevices:      cfg.Limits.MaxDevices,
		CommandRate:     cfg.Limits.BrowserCommandRate,
		CommandBurst:    cfg.Limits.BrowserCommandBurst,
		Health:          mq.Healthy,
		SilenceGrace:    silenceGrace(cfg),
		MQTTClients:     mq.clientCount(),
		MQTTThrottled:   mq.throttled(),
		Logger:          log.With("component", "gateway"),
	}, mq)
	if err != nil {
		return err
	}
	defer gw.Close()
	ups.events.gw.Store(gw)
	if err := acc.Attach(gw); err != nil {
		return err
	}

	err = mq.start(func(topic string, payload []byte, at time.Time, from wsgateway.Origin) {
		gw.IngestFrom(topic, payload, at, from)
		ups.svc.Ingest(topic, payload)
	})
	if err != nil {
		return err
	}
	if disc != nil {
		for _, d := range gw.Devices() { // the declared ones; the rest come as they are known
			disc.DeviceChanged(d)
		}
		err := mq.subscribe(disc.StatusTopic(), func(_ string, payload []byte) {
			disc.HAStatus(payload, gw.Devices) // only signals: Devices runs on the discovery goroutine
		})
		if err != nil {
			return err
		}
	}

	srv := &http.Server{
		Handler:           gw.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// A request's body (a few bytes of JSON or a login form) must
		// arrive within ReadTimeout, its answer leave within WriteTimeout,
		// and a kept-alive connection may idle for IdleTimeout: slow or
		// idle clients cannot hold connections for ever. WebSockets are
		// not affected (net/http clears the deadlines when it hands the
		// connection over).
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(httpLn) }() // ends when srv.Shutdown runs
	attrs := append(mq.attrs(), "http", httpLn.Addr().String(), "prefix", topics.Prefix(),
		"anonymous", cfg.Auth.Anonymous, "users", len(cfg.Auth.Users))
	if cfg.Storage.Path != "" {
		attrs = append(attrs, "storage", cfg.Storage.Path)
	}
	attrs = append(attrs, "database", ups.db.String()) // a password redacted
	log.Info("switchyard control plane serving", attrs...)
	log.Info("dashboard at " + scheme + "://" + displayAddr(httpLn.Addr()) + "/")

	var failure error
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case <-stop:
		log.Info("shutting down")
	case err := <-serveErr:
		failure = fmt.Errorf("serve http %s: %w", httpLn.Addr(), err)
	}

	// Reverse order: stop taking browsers, close them with a close frame,
	// then disconnect boards and flush storage (deferred b.Close).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx) // hijacked WebSockets are the gateway's to close
	gw.Close()
	acc.Close() // before the database closes
	ups.Close() // before the broker: its last jobs go out
	if disc != nil {
		disc.Close()
	}
	if err := mq.Close(); err != nil {
		return err
	}
	if failure == nil {
		log.Info("stopped")
	}
	return failure
}

// displayAddr turns ":8080" or "[::]:8080" into "localhost:8080".
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
