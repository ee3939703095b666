package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// pkg is the part of `go list -json` output the import rules read.
type pkg struct {
	ImportPath string
	Standard   bool
	DepOnly    bool // a dependency of the listed packages, not one of them
	Imports    []string
}

// module is the module under test: its path, directory and import graph.
type module struct {
	path string
	dir  string
	pkgs map[string]*pkg // by import path: every package of ./... and its deps
}

// loadModule runs go list once for all tests.
var loadModule = sync.OnceValues(func() (*module, error) {
	out, err := goCmd("list", "-m", "-f", "{{.Path}} {{.Dir}}")
	if err != nil {
		return nil, err
	}
	path, dir, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok {
		return nil, errors.New("go list -m: unexpected output " + string(out))
	}
	out, err = goCmd("list", "-deps", "-json=ImportPath,Standard,DepOnly,Imports", filepath.Join(dir, "..."))
	if err != nil {
		return nil, err
	}
	m := &module{path: path, dir: dir, pkgs: map[string]*pkg{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			return nil, errors.New("decode go list -json: " + err.Error())
		}
		m.pkgs[p.ImportPath] = p
	}
	return m, nil
})

func goCmd(args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New("go " + strings.Join(args, " ") + ": " + err.Error() + ": " + stderr.String())
	}
	return out, nil
}

func mod(t *testing.T) *module {
	t.Helper()
	m, err := loadModule()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// own returns the import path of the module's package at rel ("devices").
func (m *module) own(rel string) string { return m.path + "/" + rel }

// under reports whether import path p is the module's package rel or below it.
func (m *module) under(p, rel string) bool {
	r := m.own(rel)
	return p == r || strings.HasPrefix(p, r+"/")
}

// offences returns, for every package for which bad is true that from
// reaches without going through another bad package, the shortest import
// chain to it ("a -> b -> c"): one line per offending import.
func (m *module) offences(from string, bad func(string) bool) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	var found []string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != from && bad(p) {
			var c []string
			for q := p; q != ""; q = prev[q] {
				c = append(c, q)
			}
			slices.Reverse(c)
			found = append(found, strings.Join(c, " -> "))
			continue
		}
		if m.pkgs[p] == nil {
			continue
		}
		for _, imp := range m.pkgs[p].Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return found
}

// roots returns the module's own packages (those ./... lists), sorted.
func (m *module) roots() []string {
	var rs []string
	for p, pk := range m.pkgs {
		if !pk.DepOnly && !pk.Standard {
			rs = append(rs, p)
		}
	}
	slices.Sort(rs)
	return rs
}

// pure are the domain packages: decisions with time passed in, standard
// library only (and each other), so any adapter may use them.
var pure = []string{"devices", "history", "rollout"}

func TestPurePackagesImportOnlyStandardLibrary(t *testing.T) {
	m := mod(t)
	allowed := map[string]bool{}
	for _, rel := range pure {
		allowed[m.own(rel)] = true
	}
	bad := func(p string) bool { return !allowed[p] && (m.pkgs[p] == nil || !m.pkgs[p].Standard) }
	for _, rel := range pure {
		p := m.own(rel)
		if m.pkgs[p] == nil {
			t.Fatalf("go list found no package %s", p)
		}
		for _, c := range m.offences(p, bad) {
			t.Errorf("%s must import only the standard library and %v: %s", rel, pure, c)
		}
	}
}

func TestBrokerAndGatewayDoNotImportEachOther(t *testing.T) {
	m := mod(t)
	for _, pair := range [][2]string{{"broker", "wsgateway"}, {"wsgateway", "broker"}} {
		from, to := pair[0], pair[1]
		n := 0
		for _, r := range m.roots() {
			if !m.under(r, from) {
				continue
			}
			n++
			for _, c := range m.offences(r, func(q string) bool { return m.under(q, to) }) {
				t.Errorf("%s must not import %s, not even through another package: %s", from, to, c)
			}
		}
		if n == 0 {
			t.Errorf("go list found no package %s", m.own(from))
		}
	}
}

func TestOnlyCmdImportsViper(t *testing.T) {
	m := mod(t)
	const viper = "github.com/spf13/viper"
	isViper := func(p string) bool { return p == viper || strings.HasPrefix(p, viper+"/") }
	for _, r := range m.roots() {
		if m.under(r, "cmd") {
			continue
		}
		for _, c := range m.offences(r, isViper) {
			t.Errorf("only cmd/... may import viper; config reaches other packages as plain structs: %s", c)
		}
	}
}
