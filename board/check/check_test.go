package check_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchyard/board"
	"switchyard/board/boardtest"
	"switchyard/board/check"
	"switchyard/board/pahosession"
	"switchyard/devices"
)

// deaf wraps a session so the board never hears a command.
type deaf struct{ board.Session }

func (d deaf) Connect(ctx context.Context, o board.ConnectOptions) error {
	o.OnMessage = func(board.Message) {}
	return d.Session.Connect(ctx, o)
}

func runCheck(t *testing.T, url, id string, timeout, answer time.Duration) (bool, []string) {
	t.Helper()
	sess, err := pahosession.New(pahosession.Options{Broker: url})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	ok, err := check.Run(context.Background(), check.Config{
		ID: id, Session: sess, ClientID: "checker-" + id, Timeout: timeout, AnswerTimeout: answer,
	}, func(r check.Result) { lines = append(lines, r.String()) })
	if err != nil {
		t.Fatalf("check.Run: %v", err)
	}
	if len(lines) != len(check.Rules) {
		t.Fatalf("check reported %d rules, want %d:\n%s", len(lines), len(check.Rules), strings.Join(lines, "\n"))
	}
	return ok, lines
}

func TestCheck(t *testing.T) {
	br := boardtest.Start(t)
	// Subscribe before the boards publish: see boardtest's gate.
	obs := boardtest.Observe(t, br.URL, devices.MustTopics("").LED("good"))
	obsDeaf := boardtest.Observe(t, br.URL, devices.MustTopics("").LED("deaf"))
	boardtest.RunBoard(t, boardtest.PahoSession(t, br.URL), "good")
	boardtest.RunBoard(t, deaf{boardtest.PahoSession(t, br.URL)}, "deaf")
	obs.Expect(t, devices.MustTopics("").LED("good"), "OFF") // the boards are up
	obsDeaf.Expect(t, devices.MustTopics("").LED("deaf"), "OFF")
	// A board that is on at the start is left on.
	obs.Publish(t, devices.MustTopics("").LEDSet("good"), "ON", false)
	obs.Expect(t, devices.MustTopics("").LED("good"), "ON")

	tests := []struct {
		id     string
		answer time.Duration
		wantOK bool
		want   []string // line prefixes, one per rule
	}{
		{"good", check.DefaultAnswerTimeout, true, []string{
			"PASS status-online", "PASS led-retained", "PASS info-fields", "PASS count-rising",
			"PASS toggle-answered", "PASS on-confirmed", "PASS off-confirmed",
		}},
		{"deaf", 300 * time.Millisecond, false, []string{
			"PASS status-online", "PASS led-retained", "PASS info-fields", "PASS count-rising",
			"FAIL toggle-answered: no led within 300ms after TOGGLE",
			"FAIL on-confirmed: not checked", "FAIL off-confirmed: not checked",
		}},
		{"absent", 300 * time.Millisecond, false, []string{
			"FAIL status-online: no retained status within 300ms",
			"FAIL led-retained: not checked", "FAIL info-fields: not checked", "FAIL count-rising: not checked",
			"FAIL toggle-answered: not checked", "FAIL on-confirmed: not checked", "FAIL off-confirmed: not checked",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			ok, lines := runCheck(t, br.URL, tt.id, 300*time.Millisecond, tt.answer)
			if ok != tt.wantOK {
				t.Errorf("passed: got %t, want %t", ok, tt.wantOK)
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d: got %q, want it to start with %q", i+1, lines[i], want)
				}
			}
		})
	}
	obs.Expect(t, devices.MustTopics("").LED("good"), "ON") // restored
}

func TestCheckNoBroker(t *testing.T) {
	ok, lines := runCheck(t, "tcp://127.0.0.1:1", "x", time.Second, time.Second)
	if ok || !strings.HasPrefix(lines[0], "FAIL status-online: cannot connect to the broker") {
		t.Errorf("got %t %q, want a failed status-online naming the broker", ok, lines[0])
	}
}
