// Command apicheck type-checks the TinyGo firmware (the package in
// firmware/tinygo) with standard Go, for machines without TinyGo: it loads
// the firmware and every package it imports from source, with the build
// tags of an ESP32-C3 TinyGo build, and type-checks them with go/types.
//
// It checks that main.go calls espradio, the drivers' netdev and netlink,
// natiu-mqtt and the firmware core with the right names and types, at the
// versions go.mod lists. It does not compile for the chip, and it cannot
// check what only TinyGo has:
//
//   - TinyGo's machine package is replaced by testdata/machine, the few
//     declarations main.go uses;
//   - packages that import TinyGo's device/*, runtime/interrupt or
//     runtime/volatile (espradio's root and chip packages) are checked with
//     those imports missing, and their errors are listed but tolerated;
//   - cgo is faked (go/types FakeImportC): C.* is not checked, and a value
//     derived from it has an invalid type; errors about such values are
//     listed but tolerated, except in the firmware package itself;
//   - the standard library is Go's, not TinyGo's (net is TinyGo's own fork
//     there); it comes from the export data of `go list -export`.
//
// Run it in firmware/tinygo: go run ./internal/apicheck
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// tags are the build tags TinyGo sets for -target xiao-esp32c3 (targets
// xiao-esp32c3.json, esp32c3.json, riscv32.json, riscv.json, and the
// compiler's own); GOOS and GOARCH are linux and arm there too.
var tags = []string{
	"tinygo", "tinygo.riscv", "tinygo.riscv32", "baremetal", "linux", "arm",
	"esp32c3", "esp", "xiao_esp32c3", "gc.conservative", "scheduler.tasks",
	"serial.usb", "purego", "math_big_pure_go", "osusergo",
}

// pkg is the part of `go list -json` that apicheck reads.
type pkg struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	ImportMap  map[string]string
	Export     string
	Error      *struct{ Err string }
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "apicheck:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	stub, err := filepath.Abs(filepath.Join("internal", "apicheck", "testdata", "machine"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(stub); err != nil {
		return fmt.Errorf("run apicheck in firmware/tinygo: %w", err)
	}

	// With cgo on, go list names the cgo files of espradio; with it off
	// (for the standard library's export data) it needs no C compiler.
	pkgs, err := goList("1", "-deps", ".")
	if err != nil {
		return err
	}
	byPath := map[string]*pkg{}
	var std []string
	missing := map[string]bool{} // imports that are TinyGo's own packages
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
		switch {
		case p.ImportPath == "machine":
		case p.Error != nil && strings.Contains(p.Error.Err, "is not in std"):
			missing[p.ImportPath] = true
		case p.Error != nil:
			return fmt.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		case p.Standard && p.ImportPath != "C":
			std = append(std, p.ImportPath)
		}
	}
	if byPath["machine"] == nil {
		return errors.New("the firmware no longer imports machine: update apicheck")
	}
	stdPkgs, err := goList("0", append([]string{"-deps", "-export"}, std...)...)
	if err != nil {
		return err
	}
	exports := map[string]string{}
	for _, p := range stdPkgs {
		if p.Export != "" {
			exports[p.ImportPath] = p.Export
		}
	}

	c := &checker{
		fset:    token.NewFileSet(),
		byPath:  byPath,
		missing: missing,
		stub:    stub,
		done:    map[string]*types.Package{},
		errs:    map[string][]error{},
	}
	c.std = importer.ForCompiler(c.fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	root := pkgs[len(pkgs)-1].ImportPath // -deps lists the named package last
	if _, err := c.load(root); err != nil {
		return err
	}

	failed := 0
	for _, path := range c.order {
		var real, unseen []error
		for _, e := range c.errs[path] {
			// An operand of invalid type comes from a C.* name or a
			// TinyGo-only package that apicheck cannot see; the firmware
			// itself must have none.
			if path != root && strings.Contains(e.Error(), "invalid type") {
				unseen = append(unseen, e)
			} else {
				real = append(real, e)
			}
		}
		switch {
		case c.needsTinyGo(path) && len(real)+len(unseen) > 0:
			fmt.Fprintf(out, "partial  %s: imports TinyGo-only %s; %d errors, first: %v\n",
				path, strings.Join(c.missingImports(path), ", "), len(real)+len(unseen), c.errs[path][0])
		case len(real) > 0:
			failed++
			fmt.Fprintf(out, "FAIL     %s\n", path)
			for _, e := range real {
				fmt.Fprintf(out, "\t%v\n", e)
			}
		case len(unseen) > 0:
			fmt.Fprintf(out, "partial  %s: %d errors from values of cgo or TinyGo-only packages, first: %v\n",
				path, len(unseen), unseen[0])
		default:
			fmt.Fprintf(out, "ok       %s\n", path)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d packages do not type-check", failed)
	}
	return nil
}

func goList(cgo string, args ...string) ([]*pkg, error) {
	cmd := exec.Command("go", append([]string{"list", "-e", "-json", "-tags", strings.Join(tags, ",")}, args...)...)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "CGO_ENABLED="+cgo, "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	var pkgs []*pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		p := new(pkg)
		if err := dec.Decode(p); err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		return nil, errors.New("go list listed no packages")
	}
	return pkgs, nil
}

// checker type-checks non-standard packages from source, each once.
type checker struct {
	fset    *token.FileSet
	byPath  map[string]*pkg
	missing map[string]bool
	stub    string
	std     types.Importer

	done  map[string]*types.Package
	errs  map[string][]error // type errors by package
	order []string           // packages checked from source, dependencies first
}

func (c *checker) needsTinyGo(path string) bool { return len(c.missingImports(path)) > 0 }

func (c *checker) missingImports(path string) []string {
	var m []string
	for _, imp := range c.byPath[path].Imports {
		if c.missing[imp] {
			m = append(m, imp)
		}
	}
	sort.Strings(m)
	return m
}

func (c *checker) load(path string) (*types.Package, error) {
	if p, ok := c.done[path]; ok {
		return p, nil
	}
	if c.missing[path] {
		return nil, fmt.Errorf("%s is TinyGo's own package", path)
	}
	var dir string
	var files []string
	var importMap map[string]string
	switch p := c.byPath[path]; {
	case path == "machine":
		dir, files = c.stub, []string{"machine.go"}
	case p == nil:
		return nil, fmt.Errorf("%s: not listed by go list", path)
	case p.Standard:
		tp, err := c.std.Import(path)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		c.done[path] = tp
		return tp, nil
	default:
		dir, files, importMap = p.Dir, append(append([]string(nil), p.GoFiles...), p.CgoFiles...), p.ImportMap
	}

	var syntax []*ast.File
	for _, name := range files {
		f, err := parser.ParseFile(c.fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		syntax = append(syntax, f)
	}
	conf := types.Config{
		Importer: importerFunc(func(imp string) (*types.Package, error) {
			if m, ok := importMap[imp]; ok {
				imp = m
			}
			return c.load(imp)
		}),
		FakeImportC: true,
		Sizes:       types.SizesFor("gc", "arm"),
		Error:       func(err error) { c.errs[path] = append(c.errs[path], err) },
	}
	tp, _ := conf.Check(path, c.fset, syntax, nil) // errors went to conf.Error
	c.done[path] = tp
	c.order = append(c.order, path)
	return tp, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
