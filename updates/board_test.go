package updates

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
)

// board is a board played by the test over real MQTT (paho) and HTTP: it
// announces itself like devicefw, counts, and answers update jobs like
// the contract says a board does: it downloads the build from the job's
// URL, checks size, SHA-256 and signature against the pinned key, then,
// as told by its mode, restarts on the new version and confirms, fails,
// or vanishes.
type board struct {
	t      *testing.T
	id     string
	url    string // the broker
	key    ed25519.PublicKey
	topics devices.Topics

	mu       sync.Mutex // guards c, firmware, mode, jobs
	c        paho.Client
	firmware string // the version it runs
	mode     string // "ok", "fail" or "vanish"
	jobs     []devices.UpdateCommand
	last     devices.UpdateReport // the last report it published

	work chan devices.UpdateCommand // jobs to the worker
	stop chan struct{}              // closed by close
	wg   sync.WaitGroup             // the counter and the worker
	once sync.Once
}

// newBoard connects a board running version, with platform "sim" and
// update method "sim", that answers jobs in mode.
func newBoard(t *testing.T, url string, key ed25519.PublicKey, id, version, mode string) *board {
	t.Helper()
	b := &board{
		t: t, id: id, url: url, key: key, topics: devices.MustTopics("devices"),
		firmware: version, mode: mode,
		work: make(chan devices.UpdateCommand, 16), stop: make(chan struct{}),
	}
	if err := b.connect(); err != nil {
		t.Fatal(err)
	}
	b.wg.Add(2)
	go b.count()  // ends when stop is closed
	go b.worker() // likewise
	t.Cleanup(b.close)
	return b
}

// connect opens a session and waits until it is announced. Like
// devicefw, the board reconnects on its own (a control plane restart)
// and announces itself after every (re)connect: status, info, and its last
// update report.
func (b *board) connect() error {
	ready := make(chan struct{}, 1)
	opts := paho.NewClientOptions().AddBroker(b.url).SetClientID(b.id).
		SetCleanSession(true).SetConnectTimeout(wait).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50*time.Millisecond).SetMaxReconnectInterval(200*time.Millisecond).
		SetWill(b.topics.Status(b.id), devices.Offline, 1, true).
		SetOnConnectHandler(func(c paho.Client) {
			if err := b.announce(c); err != nil {
				b.t.Error(err)
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
		return fmt.Errorf("board %s: not connected within %v", b.id, wait)
	}
}

// announce subscribes to update/set and publishes status, info and the
// last report, on a session just (re)connected.
func (b *board) announce(c paho.Client) error {
	tok := c.Subscribe(b.topics.UpdateSet(b.id), 1, func(_ paho.Client, m paho.Message) {
		cmd, err := devices.ParseUpdateCommand(m.Payload())
		if err != nil {
			b.t.Errorf("board %s: bad job %s: %v", b.id, m.Payload(), err)
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
		return fmt.Errorf("board %s: subscribe: %v", b.id, tok.Error())
	}
	b.mu.Lock()
	info := devices.BoardInfo{ID: b.id, Firmware: "devicefw " + b.firmware, Board: "test", Platform: devices.PlatformSim, Update: devices.UpdateMethodSim}
	msgs := []struct {
		topic   string
		payload []byte
	}{{b.topics.Status(b.id), []byte(devices.Online)}, {b.topics.Info(b.id), info.AppendJSON(nil)}}
	if b.last.Job != "" {
		msgs = append(msgs, struct {
			topic   string
			payload []byte
		}{b.topics.Update(b.id), b.last.AppendJSON(nil)})
	}
	b.mu.Unlock()
	for _, m := range msgs {
		if tok := c.Publish(m.topic, 1, true, m.payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			return fmt.Errorf("board %s: publish %s: %v", b.id, m.topic, tok.Error())
		}
	}
	return nil
}

// client is the current session, nil while there is none.
func (b *board) client() paho.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c
}

// disconnect ends the session as a clean shutdown does: offline, then
// DISCONNECT.
func (b *board) disconnect() {
	b.mu.Lock()
	c := b.c
	b.c = nil
	b.mu.Unlock()
	if c == nil {
		return
	}
	if c.IsConnectionOpen() { // not when the broker is gone already (the test's end)
		c.Publish(b.topics.Status(b.id), 1, true, devices.Offline).WaitTimeout(wait)
	}
	c.Disconnect(0)
}

// count publishes the count every 20 ms while a session is up.
func (b *board) count() {
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
			c.Publish(b.topics.Count(b.id), 0, false, fmt.Sprint(n)) // QoS 0: not waited for
		}
	}
}

// report publishes an update report, retained, as a board does.
func (b *board) report(job string, st devices.UpdateState, version, errText string) {
	b.mu.Lock()
	r := devices.UpdateReport{Job: job, State: st, Version: version, Running: b.firmware, Error: errText}
	b.last = r
	b.mu.Unlock()
	if c := b.client(); c != nil {
		if tok := c.Publish(b.topics.Update(b.id), 1, true, r.AppendJSON(nil)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.t.Errorf("board %s: report %s: %v", b.id, st, tok.Error())
		}
	}
}

// worker answers the jobs.
func (b *board) worker() {
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

func (b *board) answer(cmd devices.UpdateCommand) {
	b.report(cmd.Job, devices.UpdateDownloading, cmd.Version, "")
	if why := b.fetch(cmd); why != "" {
		b.report(cmd.Job, devices.UpdateFailed, cmd.Version, why)
		return
	}
	b.mu.Lock()
	mode := b.mode
	b.mu.Unlock()
	switch mode {
	case "fail":
		b.report(cmd.Job, devices.UpdateRolledBack, cmd.Version, devices.UpdateErrCrashed)
	case "vanish":
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
// word, "" when the build is good.
func (b *board) fetch(cmd devices.UpdateCommand) string {
	resp, err := http.Get(cmd.URL)
	if err != nil {
		return devices.UpdateErrDownload + ": " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return devices.UpdateErrDownload + ": " + resp.Status
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	switch {
	case err != nil:
		return devices.UpdateErrDownload + ": " + err.Error()
	case n != cmd.Size:
		return devices.UpdateErrSize
	case hex.EncodeToString(h.Sum(nil)) != cmd.SHA256:
		return devices.UpdateErrChecksum
	case !ed25519.Verify(b.key, cmd.Digest(), cmd.SignatureBytes()):
		return devices.UpdateErrSignature
	}
	return ""
}

// received returns the jobs the board was sent.
func (b *board) received() []devices.UpdateCommand {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]devices.UpdateCommand(nil), b.jobs...)
}

// version is the version the board runs.
func (b *board) version() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.firmware
}

// close stops the board and ends its session; it may be called again.
func (b *board) close() {
	b.once.Do(func() {
		close(b.stop)
		b.wg.Wait()
		b.disconnect()
	})
}
