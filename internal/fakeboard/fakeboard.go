// Package fakeboard is a board played by tests over real MQTT (paho) and
// real HTTP: it announces itself like devicefw (status, info with platform
// "sim" and update method "sim", a count every 20 ms), reconnects on its
// own, and answers update jobs the way the contract says a board does: it
// downloads the build from the job's URL, checks size, SHA-256 and
// signature against the key pinned at "flash time", reports each state,
// and then, as told by its mode, restarts on the new version and confirms,
// rolls back, or vanishes. Tests of the update service use it where
// twelve devicefw processes would be too slow to start.
package fakeboard

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"switchyard/devices"
	"switchyard/internal/pahostore"
)

// The modes of a board: how it answers a job whose build it downloaded
// and verified (a bad build is always refused, with the contract's error
// word).
const (
	OK       = "ok"       // restarts on the new version, then trial, then confirmed
	RollBack = "rollback" // rolled_back, error "crashed"
	Vanish   = "vanish"   // says restarting, goes offline and never comes back
)

// wait bounds every MQTT and HTTP exchange of a board.
const wait = 10 * time.Second

// Config describes a board.
type Config struct {
	Broker  string            // MQTT URL, tcp://host:port
	ID      string            // device id, also its MQTT client id
	Version string            // the version it runs at start ("devicefw <Version>" in info)
	Mode    string            // OK, RollBack or Vanish; "" means OK
	Key     ed25519.PublicKey // the update key, pinned
	// Username and Password, when set, log in to MQTT and to the
	// download URL (HTTP Basic), as a device user does.
	Username, Password string
	// Prefix is the topic prefix; "" means "devices".
	Prefix string
}

// Board is a running board. Close (also run at the test's end) stops it.
type Board struct {
	t      testing.TB
	cfg    Config
	topics devices.Topics

	mu       sync.Mutex // guards c, firmware, mode, jobs, last
	c        paho.Client
	firmware string // the version it runs
	mode     string
	jobs     []devices.UpdateCommand
	last     devices.UpdateReport // the last report it published

	work chan devices.UpdateCommand // jobs to the worker
	stop chan struct{}              // closed by Close
	wg   sync.WaitGroup             // the counter and the worker
	once sync.Once
}

// Start connects a board and waits until it has announced itself.
func Start(t testing.TB, cfg Config) *Board {
	t.Helper()
	if cfg.Mode == "" {
		cfg.Mode = OK
	}
	if cfg.Prefix == "" {
		cfg.Prefix = devices.DefaultPrefix
	}
	b := &Board{
		t: t, cfg: cfg, topics: devices.MustTopics(cfg.Prefix),
		firmware: cfg.Version, mode: cfg.Mode,
		work: make(chan devices.UpdateCommand, 16), stop: make(chan struct{}),
	}
	if err := b.connect(); err != nil {
		t.Fatal(err)
	}
	b.wg.Add(2)
	go b.count()  // ends when stop is closed
	go b.worker() // likewise
	t.Cleanup(b.Close)
	return b
}

// connectTries is how many fresh MQTT clients connect tries before it
// gives up, each for up to wait.
const connectTries = 3

// connect opens a session and waits until it is announced. Like
// devicefw, the board reconnects on its own (a control plane restart)
// and announces itself after every (re)connect: status, info, and its last
// update report. A client whose sessions never get announced within wait
// is dropped and a fresh one tries, as a board that restarts its MQTT
// client would (each try is logged, so a broker that keeps a board out
// still fails the test, with the story).
func (b *Board) connect() error {
	var err error
	for try := 1; try <= connectTries; try++ {
		if err = b.connectOnce(); err == nil {
			return nil
		}
		b.t.Logf("%v (try %d of %d)", err, try, connectTries)
		b.disconnect()
		select {
		case <-b.stop:
			return err
		default:
		}
	}
	return err
}

// connectOnce is one try of connect, with one paho client.
func (b *Board) connectOnce() error {
	ready := make(chan struct{}, 1) // a session announced
	opts := paho.NewClientOptions().AddBroker(b.cfg.Broker).SetClientID(b.cfg.ID).
		SetCleanSession(true).SetConnectTimeout(wait).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetStore(pahostore.Nop{}). // paho's resume races on reconnect (see pahostore); announce republishes
		SetConnectRetryInterval(50*time.Millisecond).SetMaxReconnectInterval(200*time.Millisecond).
		SetUsername(b.cfg.Username).SetPassword(b.cfg.Password).
		SetWill(b.topics.Status(b.cfg.ID), devices.Offline, 1, true).
		SetOnConnectHandler(func(c paho.Client) {
			if err := b.announce(c); err != nil {
				if c.IsConnectionOpen() {
					b.t.Error(err)
				} else {
					// The session ended under it (a job's restart, a
					// takeover): the next one announces again, as
					// devicefw's does, and only that one is ready.
					b.t.Logf("%v (session ended; announcing at the next)", err)
				}
				return
			}
			select {
			case ready <- struct{}{}:
			default:
			}
		})
	c := paho.NewClient(opts)
	b.mu.Lock()
	b.c = c
	b.mu.Unlock()
	c.Connect() // with ConnectRetry it completes once connected: ready says more
	select {
	case <-ready:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("board %s: no session announced within %v", b.cfg.ID, wait)
	}
}

// announce subscribes to update/set and publishes status, info and the
// last report, on a session just (re)connected.
func (b *Board) announce(c paho.Client) error {
	tok := c.Subscribe(b.topics.UpdateSet(b.cfg.ID), 1, func(_ paho.Client, m paho.Message) {
		cmd, err := devices.ParseUpdateCommand(m.Payload())
		if err != nil {
			b.t.Errorf("board %s: bad job %s: %v", b.cfg.ID, m.Payload(), err)
			return
		}
		b.mu.Lock()
		b.jobs = append(b.jobs, cmd)
		b.mu.Unlock()
		select {
		case b.work <- cmd:
		case <-b.stop:
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		return fmt.Errorf("board %s: subscribe: %v", b.cfg.ID, tok.Error())
	}
	b.mu.Lock()
	info := devices.BoardInfo{ID: b.cfg.ID, Firmware: "devicefw " + b.firmware, Board: "test", Platform: devices.PlatformSim, Update: devices.UpdateMethodSim}
	msgs := []struct {
		topic   string
		payload []byte
	}{{b.topics.Status(b.cfg.ID), []byte(devices.Online)}, {b.topics.Info(b.cfg.ID), info.AppendJSON(nil)}}
	if b.last.Job != "" {
		msgs = append(msgs, struct {
			topic   string
			payload []byte
		}{b.topics.Update(b.cfg.ID), b.last.AppendJSON(nil)})
	}
	b.mu.Unlock()
	for _, m := range msgs {
		if tok := c.Publish(m.topic, 1, true, m.payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			return fmt.Errorf("board %s: publish %s: %v", b.cfg.ID, m.topic, tok.Error())
		}
	}
	return nil
}

// client is the current session, nil while there is none.
func (b *Board) client() paho.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c
}

// disconnect ends the session as a clean shutdown does: offline, then
// DISCONNECT, sent before the connection closes (so the broker has ended
// the session before a restarted board's next one takes the client id).
func (b *Board) disconnect() {
	b.mu.Lock()
	c := b.c
	b.c = nil
	b.mu.Unlock()
	if c == nil {
		return
	}
	if c.IsConnectionOpen() { // not when the broker is gone already (the test's end)
		c.Publish(b.topics.Status(b.cfg.ID), 1, true, devices.Offline).WaitTimeout(wait)
	}
	c.Disconnect(250) // waits for the DISCONNECT to be written, 250 ms at most
}

// count publishes the count every 20 ms while a session is up.
func (b *Board) count() {
	defer b.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if c := b.client(); c != nil {
			c.Publish(b.topics.Count(b.cfg.ID), 0, false, fmt.Sprint(n)) // QoS 0: not waited for
		}
	}
}

// report publishes an update report, retained, as a board does.
func (b *Board) report(job string, st devices.UpdateState, version, errText string) {
	b.mu.Lock()
	r := devices.UpdateReport{Job: job, State: st, Version: version, Running: b.firmware, Error: errText}
	b.last = r
	b.mu.Unlock()
	if c := b.client(); c != nil {
		if tok := c.Publish(b.topics.Update(b.cfg.ID), 1, true, r.AppendJSON(nil)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.t.Errorf("board %s: report %s: %v", b.cfg.ID, st, tok.Error())
		}
	}
}

// worker answers the jobs.
func (b *Board) worker() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case cmd := <-b.work:
			b.answer(cmd)
		}
	}
}

func (b *Board) answer(cmd devices.UpdateCommand) {
	b.report(cmd.Job, devices.UpdateDownloading, cmd.Version, "")
	if why := b.fetch(cmd); why != "" {
		b.report(cmd.Job, devices.UpdateFailed, cmd.Version, why)
		return
	}
	b.mu.Lock()
	mode := b.mode
	b.mu.Unlock()
	switch mode {
	case RollBack:
		b.report(cmd.Job, devices.UpdateRolledBack, cmd.Version, devices.UpdateErrCrashed)
	case Vanish:
		b.report(cmd.Job, devices.UpdateRestarting, cmd.Version, "")
		b.disconnect()
	default:
		b.report(cmd.Job, devices.UpdateRestarting, cmd.Version, "")
		b.disconnect()
		b.mu.Lock()
		b.firmware = cmd.Version
		b.mu.Unlock()
		if err := b.connect(); err != nil {
			b.t.Error(err)
			return
		}
		b.report(cmd.Job, devices.UpdateTrial, cmd.Version, "")
		b.report(cmd.Job, devices.UpdateConfirmed, cmd.Version, "")
	}
}

// fetch downloads and checks a build; it returns the contract's error
// word, "" when the build is good. Like devicefw, it tries a download
// that breaks again (a control plane restarting under it) for a while
// before it gives up.
func (b *Board) fetch(cmd devices.UpdateCommand) string {
	deadline := time.Now().Add(wait)
	for {
		why, retry := b.fetchOnce(cmd)
		if !retry || time.Now().After(deadline) {
			return why
		}
		select {
		case <-b.stop:
			return why
		case <-time.After(100 * time.Millisecond): // devicefw waits between tries too
		}
	}
}

// fetchOnce is one try of fetch; retry says whether another may work.
func (b *Board) fetchOnce(cmd devices.UpdateCommand) (why string, retry bool) {
	req, err := http.NewRequest(http.MethodGet, cmd.URL, nil)
	if err != nil {
		return devices.UpdateErrDownload + ": " + err.Error(), false
	}
	if b.cfg.Username != "" {
		req.SetBasicAuth(b.cfg.Username, b.cfg.Password)
	}
	client := http.Client{Timeout: wait}
	resp, err := client.Do(req)
	if err != nil {
		return devices.UpdateErrDownload + ": " + err.Error(), true
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return devices.UpdateErrDownload + ": " + resp.Status, resp.StatusCode >= 500
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	switch {
	case err != nil:
		return devices.UpdateErrDownload + ": " + err.Error(), true
	case n != cmd.Size:
		return devices.UpdateErrSize, false
	case hex.EncodeToString(h.Sum(nil)) != cmd.SHA256:
		return devices.UpdateErrChecksum, false
	case !ed25519.Verify(b.cfg.Key, cmd.Digest(), cmd.SignatureBytes()):
		return devices.UpdateErrSignature, false
	}
	return "", false
}

// Jobs returns the jobs the board was sent.
func (b *Board) Jobs() []devices.UpdateCommand {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]devices.UpdateCommand(nil), b.jobs...)
}

// Version is the version the board runs.
func (b *Board) Version() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.firmware
}

// SetMode changes how the board answers the next jobs.
func (b *Board) SetMode(mode string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = mode
}

// Close stops the board and ends its session; it may be called again.
func (b *Board) Close() {
	b.once.Do(func() {
		close(b.stop)
		b.wg.Wait()
		b.disconnect()
	})
}
