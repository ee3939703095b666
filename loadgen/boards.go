// The boards' own process (Config.BoardsApart): the parent keeps the
// browsers and the toggler, a child process plays the boards, and the two
// share send times, LEDs and the toggle in flight through a file both map
// (shared.go). The child speaks a line protocol on its stdin and stdout:
//
//	child:  ready                  (every board connected)
//	parent: start <t0> <ws> <we>   (unix ns: publishing starts, the window)
//	child:  done                   (the window is over, nothing more sent)
//	parent: closes stdin           (the child disconnects its boards, exits)

package loadgen

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"switchyard/devices"
)

// boardsProc is the parent's side of the boards' process.
type boardsProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	data []byte // the shared mapping
	path string // its file
	sh   *shared
	once sync.Once
	err  error // of close
}

// startBoardsProc maps a new shared file, starts the boards' process on it
// and waits until every board is connected.
func startBoardsProc(ctx context.Context, cfg *Config, base int64, perBoard int) (*boardsProc, error) {
	f, err := os.CreateTemp("", "loadgen-shared-*")
	if err != nil {
		return nil, fmt.Errorf("boards apart: %w", err)
	}
	p := &boardsProc{path: f.Name()}
	if err = f.Truncate(int64(8 * sharedLen(cfg.Boards, perBoard))); err == nil {
		p.data, p.sh, err = mapShared(f, cfg.Boards, perBoard)
	}
	f.Close()
	if err != nil {
		os.Remove(p.path)
		return nil, fmt.Errorf("boards apart: %w", err)
	}

	name := cfg.BoardsCommand
	if len(name) == 0 {
		exe, err := os.Executable()
		if err != nil {
			p.close()
			return nil, fmt.Errorf("boards apart: %w", err)
		}
		name = []string{exe, "boards"}
	}
	args := append(name[1:len(name):len(name)],
		"--shm", p.path, "--mqtt", cfg.MQTT, "--prefix", cfg.Prefix, "--id-prefix", cfg.IDPrefix,
		"--boards", strconv.Itoa(cfg.Boards), "--rate", strconv.FormatFloat(cfg.Rate, 'g', -1, 64),
		"--base", strconv.FormatInt(base, 10), "--per-board", strconv.Itoa(perBoard),
		"--parallel", strconv.Itoa(cfg.Parallel))
	p.cmd = exec.CommandContext(ctx, name[0], args...)
	p.cmd.Stderr = os.Stderr
	if p.in, err = p.cmd.StdinPipe(); err == nil {
		var out io.Reader
		if out, err = p.cmd.StdoutPipe(); err == nil {
			p.out = bufio.NewScanner(out)
			err = p.cmd.Start()
		}
	}
	if err != nil {
		if p.in != nil {
			p.in.Close()
		}
		p.cmd = nil
		p.close()
		return nil, fmt.Errorf("boards apart: start %s: %w", name[0], err)
	}
	if err := p.expect("ready"); err != nil {
		p.close()
		return nil, fmt.Errorf("boards apart: connect boards: %w", err)
	}
	return p, nil
}

// expect reads the child's next line and wants it to be word.
func (p *boardsProc) expect(word string) error {
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return err
		}
		return errors.New("the boards' process ended (its error is above)")
	}
	if got := p.out.Text(); got != word {
		return fmt.Errorf("the boards' process said %q, want %q", got, word)
	}
	return nil
}

// start has the child publish from t0 and count the window ws to we.
func (p *boardsProc) start(t0, ws, we time.Time) error {
	_, err := fmt.Fprintf(p.in, "start %d %d %d\n", t0.UnixNano(), ws.UnixNano(), we.UnixNano())
	return err
}

// close ends the child (its boards disconnect) and unmaps the file.
func (p *boardsProc) close() error {
	p.once.Do(func() {
		if p.cmd != nil {
			p.in.Close()
			p.err = p.cmd.Wait()
		}
		if p.data != nil {
			syscall.Munmap(p.data)
		}
		os.Remove(p.path)
	})
	return p.err
}

// BoardsMain runs the boards' process of a run with Config.BoardsApart
// (cmd/loadgen's "boards" subcommand): args are what startBoardsProc
// passes, stdin and stdout the line protocol above. It returns the exit
// code.
func BoardsMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("loadgen boards", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cfg Config
	shm := fl.String("shm", "", "the shared file")
	fl.StringVar(&cfg.MQTT, "mqtt", "", "broker URL")
	fl.StringVar(&cfg.Prefix, "prefix", "", "topic prefix")
	fl.StringVar(&cfg.IDPrefix, "id-prefix", "lg", "board ids are <id-prefix>-<n>")
	fl.IntVar(&cfg.Boards, "boards", 0, "boards")
	fl.Float64Var(&cfg.Rate, "rate", 1, "count messages per second per board")
	base := fl.Int64("base", 0, "count payload base")
	perBoard := fl.Int("per-board", 0, "send times per board")
	fl.IntVar(&cfg.Parallel, "parallel", 64, "concurrent connection attempts")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if err := runBoards(ctx, cfg, *shm, *base, *perBoard, stdin, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "loadgen boards:", err)
		return 1
	}
	return 0
}

func runBoards(ctx context.Context, cfg Config, shm string, base int64, perBoard int, stdin io.Reader, stdout, stderr io.Writer) error {
	if cfg.Boards <= 0 || perBoard <= 0 || cfg.Rate <= 0 || cfg.MQTT == "" || shm == "" {
		return errors.New("want --shm, --mqtt, --boards, --rate and --per-board")
	}
	topics, err := devices.NewTopics(cfg.Prefix)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(shm, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	data, sh, err := mapShared(f, cfg.Boards, perBoard)
	f.Close()
	if err != nil {
		return err
	}
	defer syscall.Munmap(data)
	r := &run{cfg: cfg, topics: topics, base: base, sh: sh,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	r.makeBoards()
	defer r.disconnectBoards()
	if err := r.connectBoards(ctx); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
		return err
	}
	in := bufio.NewScanner(stdin)
	if !in.Scan() {
		return nil // the parent gave up
	}
	var t0, ws, we int64
	if _, err := fmt.Sscanf(in.Text(), "start %d %d %d", &t0, &ws, &we); err != nil {
		return fmt.Errorf("parent said %q: %w", in.Text(), err)
	}
	r.winStart.Store(ws)
	r.winEnd.Store(we)
	runCtx, cancel := context.WithDeadline(ctx, time.Unix(0, we))
	defer cancel()
	var pubs sync.WaitGroup
	r.startPublishing(runCtx, time.Unix(0, t0), &pubs)
	pubs.Wait()
	if _, err := fmt.Fprintln(stdout, "done"); err != nil {
		return err
	}
	for in.Scan() { // until the parent closes stdin: its browsers may still drain
	}
	return nil
}
