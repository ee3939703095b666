package broker

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"switchyard/auth"
)

// BenchmarkReconnectStorm: n boards connect at once to a broker just
// started, as after a control plane restart, each with credentials:
//
//   - secret: its own device account with a generated secret (SetAccounts;
//     SHA-256, no bcrypt), as POST /api/boards makes;
//   - shared-bcrypt: all one device user of config.yaml with a bcrypt
//     password (today's quick setup);
//   - bcrypt-each: each its own bcrypt device user (today's careful setup;
//     1,000 boards only: 5,000 take minutes of CPU).
//
// The boards run in a child process (TestStormFleet), so the CPU measured
// here, this process's, is the broker's (and its authentication's). It
// reports the time from the boards' first CONNECT until every one has its
// CONNACK, and the broker's CPU seconds over it. Run it with
//
//	go test -run '^$' -bench ReconnectStorm -benchtime 1x ./broker
func BenchmarkReconnectStorm(b *testing.B) {
	for _, mode := range []string{"secret", "shared-bcrypt", "bcrypt-each"} {
		for _, n := range []int{1000, 5000} {
			if mode == "bcrypt-each" && n > 1000 {
				continue
			}
			b.Run(fmt.Sprintf("%s/%d", mode, n), func(b *testing.B) {
				for range b.N {
					online, cpu := reconnectStorm(b, mode, n)
					b.ReportMetric(online.Seconds(), "s-all-online")
					b.ReportMetric(cpu.Seconds(), "broker-cpu-s")
				}
			})
		}
	}
}

func stormSecret(i int) string { return fmt.Sprintf("generated-secret-%d", i) }

// stormUser is the user name board i connects as.
func stormUser(mode string, i int) string {
	if mode == "shared-bcrypt" {
		return "fleet"
	}
	return fmt.Sprintf("sb-%d", i)
}

func stormAuthority(b *testing.B, mode string, n int) *auth.Authority {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("sb-%d", i)
	}
	var users []auth.User
	var accts []auth.Account
	switch mode {
	case "secret":
		for i, id := range ids {
			sum := sha256.Sum256([]byte(stormSecret(i)))
			accts = append(accts, auth.Account{Name: id, Role: auth.RoleDevice, SecretDigest: hex.EncodeToString(sum[:])})
		}
	case "shared-bcrypt", "bcrypt-each":
		// One hash at the cost `controlplane hash-password` uses; each
		// user of bcrypt-each has it too, but its own name, so nothing
		// is shared between them (neither remembered nor coalesced).
		h, err := bcrypt.GenerateFromPassword([]byte("board-password"), bcrypt.DefaultCost)
		if err != nil {
			b.Fatal(err)
		}
		if mode == "shared-bcrypt" {
			users = []auth.User{{Name: "fleet", PasswordHash: string(h), Role: auth.RoleDevice, IDs: ids}}
		} else {
			for _, id := range ids {
				users = append(users, auth.User{Name: id, PasswordHash: string(h), Role: auth.RoleDevice})
			}
		}
	}
	az, err := auth.New(auth.Config{Anonymous: auth.AnonOff, Users: users})
	if err != nil {
		b.Fatal(err)
	}
	az.SetAccounts(accts)
	return az
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reconnectStorm(b *testing.B, mode string, n int) (online, cpu time.Duration) {
	b.StopTimer()
	bk, err := New(Config{Listen: "127.0.0.1:0", Auth: stormAuthority(b, mode, n), ConnectTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if err := bk.Start(); err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStormFleet$")
	cmd.Env = append(os.Environ(), "STORM_FLEET="+strings.Join([]string{bk.Addr().String(), mode, strconv.Itoa(n)}, ","))
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	defer in.Close() // the fleet disconnects and exits
	out := bufio.NewScanner(outPipe)
	line := func() string {
		for out.Scan() {
			if f := out.Text(); strings.HasPrefix(f, "storm ") {
				return strings.TrimPrefix(f, "storm ")
			}
		}
		b.Fatalf("fleet process ended: %v", out.Err())
		return ""
	}
	if got := line(); got != "ready" {
		b.Fatalf("fleet: %s", got)
	}
	b.StartTimer()
	cpu0 := cpuTime()
	if _, err := io.WriteString(in, "go\n"); err != nil {
		b.Fatal(err)
	}
	res := line()
	cpu = cpuTime() - cpu0
	b.StopTimer()
	var ns int64
	var retries int
	if _, err := fmt.Sscanf(res, "online %d retries %d", &ns, &retries); err != nil {
		b.Fatalf("fleet: %q: %v", res, err)
	}
	b.ReportMetric(float64(retries), "connect-retries")
	go func() { _, _ = io.Copy(io.Discard, outPipe) }() // ends when the fleet process exits
	return time.Duration(ns), cpu
}

// TestStormFleet is BenchmarkReconnectStorm's fleet, in a process of its
// own (STORM_FLEET=addr,mode,n): it prints "storm ready", connects every
// board at once when it reads a line, retrying a refused or timed out
// CONNECT after a second as a board does, prints "storm online <ns>
// retries <n>", and exits when its input ends.
func TestStormFleet(t *testing.T) {
	spec := os.Getenv("STORM_FLEET")
	if spec == "" {
		t.Skip("run by BenchmarkReconnectStorm")
	}
	f := strings.Split(spec, ",")
	addr, mode := f[0], f[1]
	n, _ := strconv.Atoi(f[2])
	fmt.Println("storm ready")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(1)
	}
	clients := make([]paho.Client, n)
	var retries sync.Mutex
	nRetries := 0
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { // ends once board i is connected
			pass := "board-password"
			if mode == "secret" {
				pass = stormSecret(i)
			}
			o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("sb-%d", i)).
				SetUsername(stormUser(mode, i)).SetPassword(pass).SetProtocolVersion(4).
				SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).SetKeepAlive(60 * time.Second)
			for {
				c := paho.NewClient(o)
				tok := c.Connect()
				if tok.WaitTimeout(15*time.Second) && tok.Error() == nil {
					clients[i] = c
					return
				}
				c.Disconnect(0)
				retries.Lock()
				nRetries++
				retries.Unlock()
				time.Sleep(time.Second) // a board's reconnect delay
			}
		})
	}
	wg.Wait()
	fmt.Printf("storm online %d retries %d\n", time.Since(start).Nanoseconds(), nRetries)
	_, _ = io.Copy(io.Discard, in)
	for _, c := range clients {
		c.Disconnect(0)
	}
	os.Exit(0) // past goleak: paho's goroutines end just after Disconnect
}
