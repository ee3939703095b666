package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	pmqtt "github.com/eclipse/paho.mqtt.golang"

	"switchyard/internal/testutil"
)

// mqttLogin connects to the control plane as name/password from the
// loopback address from, and returns the CONNECT's error.
func mqttLogin(r *histRig, from, name, password string) error {
	o := pmqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:" + r.cp.mqttPort).
		SetClientID(fmt.Sprintf("guess-%s-%s", from, name)).SetUsername(name).SetPassword(password).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).
		SetDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: wait})
	c := pmqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(0)
	return nil
}

// TestThrottledLogins: five wrong MQTT passwords from one address, and
// the sixth attempt from there is refused even with the right password,
// over MQTT and HTTP alike, while the right password from another address
// works; the refusal is in the audit log and /metrics.
func TestThrottledLogins(t *testing.T) {
	r := newHistRig(t)
	for i := range 5 {
		if err := mqttLogin(r, "127.0.0.1", "otto", "wrong"); err == nil {
			t.Fatalf("wrong password %d: connected", i+1)
		}
	}
	if err := mqttLogin(r, "127.0.0.1", "otto", "otto-pw"); err == nil {
		t.Fatal("the right password from a throttled address: connected, want refused")
	}
	if err := mqttLogin(r, "127.0.0.2", "otto", "otto-pw"); err != nil {
		t.Fatalf("the right password from another address: %v", err)
	}
	req, _ := http.NewRequest("GET", r.cp.http+"/api/devices", nil)
	req.SetBasicAuth("otto", "otto-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("HTTP from the throttled address: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// The audit log is written in batches: wait for the entry.
	testutil.WaitFor(t, wait, func() error {
		code, body := r.api(t, "GET", "/api/audit?actor=otto")
		var a struct {
			Entries []struct{ Action, Target, Result, Remote string } `json:"entries"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &a) != nil {
			return fmt.Errorf("GET /api/audit: %d %s", code, body)
		}
		throttled := 0
		for _, e := range a.Entries {
			if e.Action == "login" && e.Target == "throttled" && e.Result == "denied" && strings.HasPrefix(e.Remote, "127.0.0.1:") {
				throttled++
			}
		}
		if throttled != 1 {
			return fmt.Errorf("audit: %d throttled-login entries from 127.0.0.1, want 1 (once per interval): %+v", throttled, a.Entries)
		}
		return nil
	})
	resp, err = http.Get(r.cp.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, via := range []string{"mqtt", "http"} {
		if !strings.Contains(string(m), `switchyard_auth_throttled_total{via="`+via+`"}`) {
			t.Errorf("/metrics has no switchyard_auth_throttled_total{via=%q}", via)
		}
	}
}
