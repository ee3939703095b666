package archtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/internal/testutil"
)

// maxTracked is the largest file git may track outside testdata/ and docs/.
const maxTracked = 1 << 20

// binaryMagic are the first bytes of executables: ELF, Mach-O (32 and 64
// bit, both byte orders, and universal) and PE (MZ).
var binaryMagic = []struct {
	what  string
	magic []byte
}{
	{"an ELF executable", []byte("\x7fELF")},
	{"a Mach-O executable", []byte{0xfe, 0xed, 0xfa, 0xce}},
	{"a Mach-O executable", []byte{0xfe, 0xed, 0xfa, 0xcf}},
	{"a Mach-O executable", []byte{0xce, 0xfa, 0xed, 0xfe}},
	{"a Mach-O executable", []byte{0xcf, 0xfa, 0xed, 0xfe}},
	{"a Mach-O universal executable", []byte{0xca, 0xfe, 0xba, 0xbe}},
	{"a PE (Windows) executable", []byte("MZ")},
}

// TestTrackedFilesAreNotBinaries fails for a file git tracks outside any
// testdata/ or docs/ directory (at any depth) that is an executable binary
// (by its first bytes, or by the executable mode git records, 100755,
// without a "#!" line) or larger than 1 MiB: build outputs belong in
// .gitignore, not in every clone. It reads the index (git ls-files) for
// paths and modes and the working tree for contents; symlinks, submodules
// and files deleted in the working tree are skipped. Outside a git checkout
// it skips, unless CI=true: CI must check.
func TestTrackedFilesAreNotBinaries(t *testing.T) {
	m := mod(t)
	out, err := exec.Command("git", "-C", m.dir, "ls-files", "--stage", "-z").Output()
	if err != nil {
		testutil.Missing(t, fmt.Sprintf("not a git checkout (git ls-files in %s: %v)", m.dir, err))
	}
	n := 0
	for _, entry := range strings.Split(string(out), "\x00") {
		// <mode> <object> <stage>\t<path>
		meta, path, ok := strings.Cut(entry, "\t")
		if !ok {
			continue
		}
		mode, _, _ := strings.Cut(meta, " ")
		if mode == "120000" || mode == "160000" || exempt(path) {
			continue // symlink, submodule
		}
		n++
		if err := checkTracked(filepath.Join(m.dir, filepath.FromSlash(path)), mode); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
	if n == 0 {
		t.Errorf("git ls-files in %s listed no file to check", m.dir)
	}
}

// exempt reports whether path lies in a testdata or docs directory.
func exempt(path string) bool {
	dirs := strings.Split(path, "/")
	for _, d := range dirs[:len(dirs)-1] {
		if d == "testdata" || d == "docs" {
			return true
		}
	}
	return false
}

// checkTracked returns why the file at path, which git records with mode,
// must not be tracked, or nil.
func checkTracked(path, mode string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted in the working tree; its removal is not committed yet
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	head := make([]byte, 4)
	k, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	head = head[:k]
	var why []string
	for _, b := range binaryMagic {
		if bytes.HasPrefix(head, b.magic) {
			why = append(why, "is "+b.what+": build outputs belong in .gitignore, not in git")
			break
		}
	}
	if mode == "100755" && !bytes.HasPrefix(head, []byte("#!")) {
		why = append(why, "is executable (mode 100755) but not a #! script: a binary, or a mode to fix with git update-index --chmod=-x")
	}
	if st.Size() > maxTracked {
		why = append(why, fmt.Sprintf("%.1f MiB, larger than 1 MiB: keep it out of git, or under testdata/ or docs/", float64(st.Size())/(1<<20)))
	}
	if why == nil {
		return nil
	}
	return errors.New(strings.Join(why, "; "))
}
