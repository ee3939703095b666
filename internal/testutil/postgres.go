package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// postgresReady is the line postgres logs once it accepts connections.
var postgresReady = regexp.MustCompile(`database system is ready to accept connections`)

// StartPostgres runs a PostgreSQL server of its own for the test (Debian's
// package postgresql; see Missing for when it is not installed): a new
// cluster in a temporary directory, on a free loopback port, its unix
// socket in that directory, without fsync (a test's data need not survive
// a power cut). It returns the URL of its database "postgres", user
// "postgres", no password; the server is stopped and its files removed
// when the test ends.
//
// As root, the server runs as user nobody: initdb and postgres refuse to
// run as root.
func StartPostgres(t testing.TB) string {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		Missing(t, "PostgreSQL not found (/usr/lib/postgresql/*/bin/initdb); install it with\napt-get install -y postgresql")
	}
	// Not t.TempDir: its parent directories are root's, closed to nobody.
	dir, err := os.MkdirTemp("", "switchyard-postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = nobody(t)
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	asUser(initdb, dir, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", port, "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=40")
	asUser(cmd, dir, cred)
	p, _, err := Start(t, cmd, postgresReady, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before Start's Kill: a fast shutdown ends the server's own processes too
		_ = p.Signal(syscall.SIGINT)
		select {
		case <-p.Exited():
		case <-time.After(10 * time.Second):
		}
	})
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", port)
}

// postgresBin is the directory of the newest installed PostgreSQL's
// programs, or "" when none is installed.
func postgresBin() string {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int { return pgVersion(a) - pgVersion(b) })
	if len(found) > 0 {
		return filepath.Dir(found[len(found)-1])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// pgVersion is the major version in a path /usr/lib/postgresql/<v>/bin/initdb.
func pgVersion(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// nobody is the credential of user nobody.
func nobody(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("running PostgreSQL as root needs another user: %v", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("user nobody: uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// asUser runs cmd in dir, as cred's user when cred is not nil.
func asUser(cmd *exec.Cmd, dir string, cred *syscall.Credential) {
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "HOME="+dir)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
}
