package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/internal/testutil"
)

// externalConfig writes a config for external mode with mqtt.url urls.
func externalConfig(t *testing.T, urls string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	body := fmt.Sprintf("mqtt: {mode: external, url: %q}\nhttp: {listen: '127.0.0.1:0'}\nlog: {level: debug}\n", urls)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitLog polls the control plane's log for a line containing every piece
// (a log line is no event the test can wait on).
func waitLog(t *testing.T, p *proc, pieces ...string) {
	t.Helper()
	testutil.WaitFor(t, wait, func() error {
		for _, line := range strings.Split(p.logs(), "\n") {
			ok := true
			for _, piece := range pieces {
				ok = ok && strings.Contains(line, piece)
			}
			if ok {
				return nil
			}
		}
		return fmt.Errorf("no log line with %q", pieces)
	})
}

// Two brokers that share nothing, in mqtt.url: the control plane is on the
// first, says so, and when it stops is on the second at once, healthy
// again and showing the second's retained state.
func TestExternalBrokerListFailover(t *testing.T) {
	m1, m2 := testutil.StartMosquitto(t, false), testutil.StartMosquitto(t, false)
	url1, url2 := "tcp://127.0.0.1:"+m1.Port, "tcp://127.0.0.1:"+m2.Port
	p := start(t, externalConfig(t, url1+" , "+url2))
	waitHealth(t, p.http, 200)
	waitLog(t, p, "connected to the external broker", "url="+url1)
	waitLog(t, p, "client_id=switchyard-")

	p.mqttPort = m1.Port
	p.pub(t, "-t", "devices/one/led", "-m", "ON", "-r")
	p.waitDevice(t, "one", func(d device) bool { return d.LED != nil && *d.LED == "ON" })
	p.mqttPort = m2.Port
	p.pub(t, "-t", "devices/two/led", "-m", "OFF", "-r")

	m1.Stop()
	waitLog(t, p, "connected to the external broker", "url="+url2)
	waitHealth(t, p.http, 200)
	p.waitDevice(t, "two", func(d device) bool { return d.LED != nil && *d.LED == "OFF" })
	p.stop()
}

// A broker that takes the TCP connection and never answers CONNECT is no
// working connection: /healthz answers 503; and the control plane still
// stops at once.
func TestExternalBrokerUnansweredConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	p := start(t, externalConfig(t, "tcp://"+ln.Addr().String()))
	testutil.Recv(t, accepted, wait, "the control plane's connection")
	if got := healthz(p.http); got != 503 {
		t.Errorf("/healthz = %d while CONNECT is unanswered, want 503", got)
	}
	p.stop() // within 5 s: the attempt is abandoned, not waited out
}
