package extbroker_test

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"switchyard/extbroker"
	"switchyard/internal/testutil"
)

func TestParseURLs(t *testing.T) {
	for _, tc := range []struct {
		list string
		want []string
		bad  string // in the error
	}{
		{"tcp://127.0.0.1:1883", []string{"tcp://127.0.0.1:1883"}, ""},
		{"tcp://a:1883,tcp://b:1883", []string{"tcp://a:1883", "tcp://b:1883"}, ""},
		{" tcp://a:1883 , ssl://b:8883,ws://c:9001/mqtt ", []string{"tcp://a:1883", "ssl://b:8883", "ws://c:9001/mqtt"}, ""},
		{"tcp://a:1883,http://b:80", nil, "http://b:80"},
		{"tcp://a:1883,,tcp://b:1883", nil, "url 2"},
		{"tcp://a:1883,", nil, "url 2"},
		{"b:1883", nil, "b:1883"},
		{"", nil, "no broker url"},
		{" , ", nil, "empty"},
	} {
		got, err := extbroker.ParseURLs(tc.list)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("ParseURLs(%q): %v", tc.list, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("ParseURLs(%q) = %v, %v; want an error naming %q", tc.list, got, err, tc.bad)
		case tc.bad == "" && strings.Join(got, " ") != strings.Join(tc.want, " "):
			t.Errorf("ParseURLs(%q) = %q, want %q", tc.list, got, tc.want)
		}
	}
	if _, err := extbroker.New(extbroker.Config{URL: "tcp://a:1883, ftp://b"}); err == nil || !strings.Contains(err.Error(), "ftp://b") {
		t.Errorf("New with a bad url in the list: %v, want an error naming it", err)
	}
}

// retain publishes a retained message at the broker at url with a client
// of its own.
func retain(t *testing.T, url, topic, payload string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("retain-" + topic).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Publish(topic, 1, true, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish at %s: %v", url, tok.Error())
	}
}

// connectedTo waits for the log line saying the client connected, and
// returns its url.
func connectedTo(t *testing.T, logs records) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case rec := <-logs:
			if rec.Message != "connected to the external broker" {
				continue
			}
			var url string
			rec.Attrs(func(a slog.Attr) bool {
				if a.Key == "url" {
					url = a.Value.String()
				}
				return true
			})
			return url
		case <-deadline:
			t.Fatal("the client never connected")
			return ""
		}
	}
}

// Three brokers that share nothing, each holding its own retained led:
// the client connects to the first; when it stops, to the next at once,
// subscribing again (that broker's retained led arrives); then to the
// third; and, wrapping around, to the first again.
func TestFailoverToTheNextBroker(t *testing.T) {
	var ms []*testutil.Mosquitto
	var urls []string
	for range 3 {
		m := testutil.StartMosquitto(t, false)
		ms = append(ms, m)
		urls = append(urls, "tcp://127.0.0.1:"+m.Port)
	}
	for i, u := range urls {
		retain(t, u, "devices/b1/led", []string{"A", "B", "C"}[i])
	}
	logs := make(records, 1024)
	x, err := extbroker.New(extbroker.Config{URL: strings.Join(urls, " , "), ClientID: "cp-1", Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(messages, 16)
	if err := x.Subscribe("devices/#", got.handle); err != nil {
		t.Fatal(err)
	}
	x.Start()
	t.Cleanup(func() { x.Close() })

	step := func(want int, led string) {
		t.Helper()
		if u := connectedTo(t, logs); u != urls[want] {
			t.Fatalf("connected to %s, want %s", u, urls[want])
		}
		got.want(t, "the retained led of broker "+led, map[string]string{"devices/b1/led": led})
		testutil.WaitFor(t, wait, x.Healthy) // set just before the subscription: normally already so
	}
	step(0, "A")
	ms[0].Stop()
	step(1, "B")
	ms[0].Start() // empty: it forgot its retained led
	retain(t, urls[0], "devices/b1/led", "A2")
	ms[1].Stop()
	step(2, "C")
	if err := x.Publish("devices/b1/led/set", []byte("ON"), false, 1); err != nil {
		t.Errorf("publish on the third broker: %v", err)
	}
	ms[2].Stop()
	step(0, "A2")
}

// silentBroker accepts TCP connections and never answers; accepted gets
// each one.
func silentBroker(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() { // ends when the listener closes
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return "tcp://" + ln.Addr().String(), accepted
}

// A broker that takes the TCP connection and never answers CONNECT is
// no connection: Healthy says so through attempt after attempt.
func TestUnansweredConnectIsNotHealthy(t *testing.T) {
	url, accepted := silentBroker(t)
	x, err := extbroker.New(extbroker.Config{URL: url, ConnectTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	x.Start()
	defer x.Close()
	for i := range 2 { // the second attempt comes once the first timed out
		testutil.Recv(t, accepted, wait, "a connection to the silent broker")
		if err := x.Healthy(); !errors.Is(err, extbroker.ErrNotConnected) {
			t.Fatalf("attempt %d: Healthy = %v while CONNECT is unanswered, want ErrNotConnected", i+1, err)
		}
	}
}

// A silent node first in the list costs one connect timeout; then the
// client is on the next.
func TestSilentNodeIsSkipped(t *testing.T) {
	silent, accepted := silentBroker(t)
	m := testutil.StartMosquitto(t, false)
	good := "tcp://127.0.0.1:" + m.Port
	logs := make(records, 256)
	x, err := extbroker.New(extbroker.Config{URL: silent + "," + good, ConnectTimeout: 300 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	x.Start()
	defer x.Close()
	testutil.Recv(t, accepted, wait, "a connection to the silent broker")
	if u := connectedTo(t, logs); u != good {
		t.Fatalf("connected to %s, want %s", u, good)
	}
	testutil.WaitFor(t, wait, x.Healthy)
}

// Close does not wait out a connection attempt whose CONNECT is
// unanswered (up to 5 s: a shutdown would hang that long): the silent
// broker sees its connection closed well before the connect timeout.
func TestCloseAbandonsAnUnansweredConnect(t *testing.T) {
	url, accepted := silentBroker(t)
	x, err := extbroker.New(extbroker.Config{URL: url}) // ConnectTimeout 5 s
	if err != nil {
		t.Fatal(err)
	}
	x.Start()
	c := testutil.Recv(t, accepted, wait, "a connection to the silent broker")
	if err := c.SetReadDeadline(time.Now().Add(4 * time.Second)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { x.Close(); close(closed) }() // ends when Close returns
	defer func() { <-closed }()
	buf := make([]byte, 1024)
	for {
		if _, err := c.Read(buf); err != nil { // CONNECT, then the close
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the attempt was not abandoned at Close")
			}
			return
		}
	}
}
