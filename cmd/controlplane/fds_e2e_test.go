package main

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOutOfFileDescriptors floods the MQTT port of a control plane limited
// to a few file descriptors: /healthz (on a connection opened before)
// answers 503 while accepting fails, and once the flood is gone MQTT
// accepts again and /healthz answers 200. (The listener used to stop
// accepting for good at the first failure, with /healthz still 200.)
func TestOutOfFileDescriptors(t *testing.T) {
	cfg := testConfig(t, "")
	// ulimit -n sets the soft and the hard limit, so the Go runtime cannot
	// raise it; 32 leaves ~20 descriptors beyond what the process holds.
	p := startCmd(t, exec.Command("sh", "-c", `ulimit -n 32 && exec "$0" --config "$1"`, binPath, cfg))
	client := &http.Client{Timeout: wait, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	health := func() int {
		t.Helper()
		resp, err := client.Get(p.http + "/healthz") // on the kept-alive connection
		if err != nil {
			t.Fatalf("healthz: %v", err)
		}
		io.Copy(io.Discard, resp.Body) // read to the end, so the connection is kept
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := health(); code != http.StatusOK {
		t.Fatalf("healthz before the flood = %d", code)
	}
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 40 { // connections that never send CONNECT hold a descriptor each for 10 s
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+p.mqttPort, wait)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	deadline := time.Now().Add(wait)
	for health() != http.StatusServiceUnavailable { // no event says accepting failed: poll
		if time.Now().After(deadline) {
			t.Fatalf("healthz stayed 200 with the listener out of descriptors\n%s", p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The line is written before healthz turns, but reaches the test
	// through a pipe and a scanner: poll for it, with a deadline.
	for deadline := time.Now().Add(wait); !strings.Contains(p.logs(), "too many open files"); {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say why accepting fails:\n%s", p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range flood {
		c.Close()
	}
	flood = nil
	// A board gets in again.
	p.pub(t, "-t", "devices/back/status", "-m", "online", "-r")
	p.waitDevice(t, "back", func(d device) bool { return d.Online })
	deadline = time.Now().Add(wait)
	for health() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("healthz not 200 again after the flood\n%s", p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
}
