package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"

	"switchyard/history"
	"switchyard/internal/testutil"
	"switchyard/store"
)

// TestHistoryKill9UnderAThousandBoards: a control plane with 1,000
// simulated boards that came online and were switched on is killed with
// SIGKILL while it writes the history of a second command to all of
// them. Its database opens clean (integrity_check ok), still holds every
// board's online and led ON that it held, committed, before the kill
// (read by the test from the database file while the control plane ran),
// and the control plane starts again on it. What the history held is
// checked, not a time: a write acknowledged is a write kept.
func TestHistoryKill9UnderAThousandBoards(t *testing.T) {
	const n = 1000
	r := newHistRig(t)
	path := filepath.Join(filepath.Dir(r.cfg), "data", "switchyard.db")

	sim := exec.Command(roDevicefw(t, "1.0"), "--broker", "tcp://127.0.0.1:"+r.cp.mqttPort, "--id", "k9",
		"--sim", fmt.Sprint(n), "--interval", "1s", "--state-dir", t.TempDir())
	if _, _, err := testutil.Start(t, sim, roOnlineLine, roWait); err != nil {
		t.Fatal(err)
	}
	r.waitDevices(t, n, func(online bool, _ *string) bool { return online }, "online")
	command := func(action string) {
		t.Helper()
		req, _ := http.NewRequest("POST", r.cp.http+"/api/groups/all/led", strings.NewReader(`{"action":"`+action+`"}`))
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := (&http.Client{Timeout: roWait}).Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /api/groups/all/led %s: %v %v", action, resp, err)
		}
		resp.Body.Close()
	}
	command("on")
	r.waitDevices(t, n, func(_ bool, led *string) bool { return led != nil && *led == "ON" }, "switched on")

	// Every online and led ON committed, as a reader of the file sees it
	// while the control plane writes (WAL: readers see committed
	// transactions only).
	live, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	testutil.WaitFor(t, roWait, func() error {
		on, online, err := committed(live)
		if err != nil {
			return err
		}
		if on < n || online < n {
			return fmt.Errorf("committed: led ON of %d boards, online of %d; want %d each", on, online, n)
		}
		return nil
	})
	live.Close()

	// The kill lands while the control plane writes the next command's
	// history: once the first board's OFF is back on MQTT.
	offSeen := make(chan struct{}, 1)
	c := pmqtt.NewClient(pmqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:" + r.cp.mqttPort).SetClientID("k9-observer").
		SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("observer: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Subscribe("devices/+/led", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		if string(m.Payload()) == "OFF" {
			select {
			case offSeen <- struct{}{}:
			default: // one is enough
			}
		}
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	command("off")
	testutil.Recv(t, offSeen, roWait, "a board's led OFF")
	if err := r.cp.p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.cp.p.Exited():
	case <-time.After(roWait):
		t.Fatal("the control plane still runs after SIGKILL")
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var check string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after kill -9: %q %v", check, err)
	}
	on, online, err := committed(raw)
	if err != nil {
		t.Fatal(err)
	}
	if on < n || online < n {
		t.Errorf("after kill -9: led ON of %d boards, online of %d; %d each were committed before it", on, online, n)
	}
	var off int
	if err := raw.QueryRow(`SELECT COUNT(DISTINCT device) FROM history_events WHERE kind = ? AND value = 'OFF'`, string(history.KindLED)).Scan(&off); err != nil {
		t.Fatal(err)
	}
	t.Logf("kill -9 under %d boards, mid-command: every committed online and led ON kept; the OFF of %d boards written before the kill", n, off)
	raw.Close()

	db, err := store.Open(context.Background(), "sqlite:"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	r.cp = start(t, r.cfg) // opens the same database after the kill
	r.waitHistory(t, "k9-1", "offline(restart by )", "online( by board)")
}

// committed counts the boards with a led ON and with an online in the
// history held by db.
func committed(db *sql.DB) (on, online int, err error) {
	q := `SELECT COUNT(DISTINCT device) FROM history_events WHERE kind = ? AND value = ?`
	if err := db.QueryRow(q, string(history.KindLED), "ON").Scan(&on); err != nil {
		return 0, 0, fmt.Errorf("count led ON: %w", err)
	}
	if err := db.QueryRow(`SELECT COUNT(DISTINCT device) FROM history_events WHERE kind = ?`, string(history.KindOnline)).Scan(&online); err != nil {
		return 0, 0, fmt.Errorf("count online: %w", err)
	}
	return on, online, nil
}

// waitDevices waits until n boards of GET /api/devices satisfy ok.
func (r *histRig) waitDevices(t *testing.T, n int, ok func(online bool, led *string) bool, what string) {
	t.Helper()
	testutil.WaitFor(t, roWait, func() error {
		code, body := r.api(t, "GET", "/api/devices")
		var ds []struct {
			Online bool    `json:"online"`
			LED    *string `json:"led"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &ds) != nil {
			return fmt.Errorf("GET /api/devices: %d %s", code, body)
		}
		got := 0
		for _, d := range ds {
			if ok(d.Online, d.LED) {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d boards %s", got, n, what)
		}
		return nil
	})
}
