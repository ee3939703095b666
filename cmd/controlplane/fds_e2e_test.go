package main

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"switchyard/internal/testutil"
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
	p := startCmd(t, exec.Command("sh", "-c", `ulimit -n 32 && exec "$0" --config "$1"`, binary(t), cfg))
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
	// No event says accepting failed: poll.
	testutil.WaitFor(t, wait, testutil.Until("healthz 503 with the listener out of descriptors", func() bool {
		return health() == http.StatusServiceUnavailable
	}))
	// The line is written before healthz turns, but reaches the test
	// through a pipe and a scanner: poll for it.
	testutil.WaitFor(t, wait, testutil.Until(`"too many open files" in the log`, func() bool {
		return strings.Contains(p.logs(), "too many open files")
	}))
	for _, c := range flood {
		c.Close()
	}
	flood = nil
	// A board gets in again.
	p.pub(t, "-t", "devices/back/status", "-m", "online", "-r")
	p.waitDevice(t, "back", func(d device) bool { return d.Online })
	testutil.WaitFor(t, wait, testutil.Until("healthz 200 again after the flood", func() bool {
		return health() == http.StatusOK
	}))
	p.stop()
}
