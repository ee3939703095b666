// Password guessers: clients hammering the control plane's logins with
// wrong passwords while the load runs, to measure what they cost the
// fleet (the credentials benchmark of issue 14).

package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Guess configures password guessers. Guesser i sends wrong passwords for
// User without pause, one attempt at a time: the even ones as POST
// <HTTP>/login, the odd ones as MQTT CONNECTs to MQTT.
type Guess struct {
	N    int    // guessers; 0: none
	User string // the name guessed at; empty means "admin"
	HTTP string // the control plane's base URL, e.g. http://127.0.0.1:8080
	MQTT string // tcp://host:port
	// From is the local address of guesser 0; guesser i connects from
	// From + i (127.0.0.10, 127.0.0.11, …: each its own address, as far
	// as throttling goes). Empty: the system's choice (all one address).
	From string
}

// GuessResult is what the guessers got during the window.
type GuessResult struct {
	Guessers int
	Window   time.Duration
	// Answers counts attempts by answer: "http 401", "http 429", "mqtt
	// bad credentials", "mqtt not authorized", "error" (timeouts,
	// refused connections).
	Answers map[string]int64
}

// Attempts is the number of attempts answered in the window.
func (g GuessResult) Attempts() int64 {
	var n int64
	for _, v := range g.Answers {
		n += v
	}
	return n
}

// String says what the guessers got, per second of the window.
func (g GuessResult) String() string {
	secs := g.Window.Seconds()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(g.Answers)) {
		parts = append(parts, fmt.Sprintf("%s %.1f/s", k, float64(g.Answers[k])/secs))
	}
	return fmt.Sprintf("%d guessers: %d attempts in %v (%.1f/s): %s", g.Guessers, g.Attempts(), g.Window,
		float64(g.Attempts())/secs, strings.Join(parts, ", "))
}

// guessers runs the guessers and counts the answers they get inside the
// window.
type guessers struct {
	cfg      Guess
	winStart time.Time
	winEnd   time.Time
	wg       sync.WaitGroup

	mu      sync.Mutex // guards answers
	answers map[string]int64
}

// startGuessers starts cfg.N guessers; they stop when ctx ends.
func startGuessers(ctx context.Context, cfg Guess, winStart, winEnd time.Time) (*guessers, error) {
	if cfg.User == "" {
		cfg.User = "admin"
	}
	g := &guessers{cfg: cfg, winStart: winStart, winEnd: winEnd, answers: map[string]int64{}}
	var from netip.Addr
	if cfg.From != "" {
		var err error
		if from, err = netip.ParseAddr(cfg.From); err != nil {
			return nil, fmt.Errorf("guessers: from %q: %w", cfg.From, err)
		}
	}
	mqttAddr := strings.TrimPrefix(strings.TrimPrefix(cfg.MQTT, "tcp://"), "mqtt://")
	for i := range cfg.N {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if from.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: net.IP(from.AsSlice())}
			from = from.Next()
		}
		g.wg.Add(1)
		if i%2 == 0 {
			go g.httpGuesser(ctx, i, d) // ends with ctx
		} else {
			go g.mqttGuesser(ctx, i, d, mqttAddr) // ends with ctx
		}
	}
	return g, nil
}

// wait waits for the guessers to stop and returns what they got.
func (g *guessers) wait() GuessResult {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return GuessResult{Guessers: g.cfg.N, Window: g.winEnd.Sub(g.winStart), Answers: maps.Clone(g.answers)}
}

func (g *guessers) count(answer string) {
	if now := time.Now(); now.Before(g.winStart) || now.After(g.winEnd) {
		return
	}
	g.mu.Lock()
	g.answers[answer]++
	g.mu.Unlock()
}

var guessSeq atomic.Int64

func (g *guessers) httpGuesser(ctx context.Context, i int, d *net.Dialer) {
	defer g.wg.Done()
	client := &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		form := url.Values{"name": {g.cfg.User}, "password": {fmt.Sprintf("guess-%d-%d", i, guessSeq.Add(1))}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(g.cfg.HTTP, "/")+"/login", strings.NewReader(form.Encode()))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				g.count("error")
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		g.count(fmt.Sprintf("http %d", resp.StatusCode))
	}
}

func (g *guessers) mqttGuesser(ctx context.Context, i int, d *net.Dialer, addr string) {
	defer g.wg.Done()
	for ctx.Err() == nil {
		answer, err := guessMQTT(ctx, d, addr, fmt.Sprintf("guess-%d", i), g.cfg.User, fmt.Sprintf("guess-%d-%d", i, guessSeq.Add(1)))
		if err != nil {
			if ctx.Err() == nil {
				g.count("error")
			}
			continue
		}
		g.count(answer)
	}
}

// guessMQTT sends one MQTT 3.1.1 CONNECT and names its CONNACK's answer.
func guessMQTT(ctx context.Context, d *net.Dialer, addr, clientID, user, pass string) (string, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })() // the run ends: do not wait for the answer
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	var body []byte
	body = str(body, "MQTT")
	body = append(body, 4, 0xC2, 0, 60) // level 4; user name, password, clean session; keep-alive 60 s
	body = str(str(str(body, clientID), user), pass)
	pk := []byte{0x10}
	for n := len(body); ; {
		b := byte(n % 128)
		if n /= 128; n > 0 {
			pk = append(pk, b|0x80)
			continue
		}
		pk = append(pk, b)
		break
	}
	if _, err := c.Write(append(pk, body...)); err != nil {
		return "", err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(bufio.NewReader(c), ack); err != nil {
		return "", err
	}
	switch ack[3] {
	case 0:
		return "mqtt accepted", nil
	case 4:
		return "mqtt bad credentials", nil
	case 5:
		return "mqtt not authorized", nil
	}
	return fmt.Sprintf("mqtt code %d", ack[3]), nil
}
