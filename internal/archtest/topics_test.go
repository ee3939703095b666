package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"switchyard/devices"
)

// topicsFile is the one file allowed to build and split topic strings.
const topicsFile = "devices/topics.go"

// TestTopicsOnlyInDevicesTopicsGo scans every non-test Go file of the
// repository (nested modules such as firmware/tinygo included; _test.go
// files and testdata/ excluded, since tests write the expected topics out
// by hand on purpose) except devices/topics.go for code that builds or
// splits topic strings itself. It flags:
//
//  1. a string literal that is a topic's tail: "/<suffix>" or "<suffix>"
//     when the suffix has several levels ("/led", "led/set"), or a
//     literal ending in "/<suffix>" that does not start with '/' and holds
//     no space or '{' (a topic or its format: "devices/%s/led"; file paths
//     and HTTP route patterns start with '/' or hold a space), for every
//     suffix in devices.Kinds(), so a new kind is covered as soon as it is
//     added;
//  2. a + concatenation with a string literal containing '/' and an
//     operand that names a topic or prefix (an identifier or field whose
//     name contains "topic" or "prefix", ignoring functions of strings,
//     bytes, path and filepath such as strings.TrimPrefix): cfg.Prefix+"/";
//  3. a call of fmt.Sprintf, Printf, Fprintf or Appendf whose format
//     contains '/' with an argument naming a topic or prefix (Errorf is
//     left out: an error message may quote a topic);
//  4. a call to a splitting function of strings or bytes (Split*, Cut*,
//     Index*, LastIndex*, Trim{Prefix,Suffix}, Fields*) with an argument
//     naming a topic or filter;
//  5. slicing a value that names a topic or filter: topic[len(p):].
//
// Names are the heuristic: code that hides a topic in a variable called
// s escapes rules 2 to 5 (rule 1 still sees its suffix). The rule has no
// false positives in the code as it is; a new one is better fixed by a
// devices.Topics method than by a name change.
func TestTopicsOnlyInDevicesTopicsGo(t *testing.T) {
	m := mod(t)
	var findings []string
	err := filepath.WalkDir(m.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != m.dir && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(m.dir, path)
		if err != nil {
			return err
		}
		if filepath.ToSlash(rel) == topicsFile {
			return nil
		}
		fs, err := scanTopics(path, filepath.ToSlash(rel))
		findings = append(findings, fs...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s; build and split topics with devices.Topics (%s)", f, topicsFile)
	}
}

var (
	topicName       = regexp.MustCompile(`(?i)topic|prefix`)
	topicFilterName = regexp.MustCompile(`(?i)topic|filter`)

	// Packages whose function names (TrimPrefix, HasPrefix) are not names of
	// topics.
	textPkgs = map[string]bool{"strings": true, "bytes": true, "path": true, "filepath": true}

	splitFuncs = regexp.MustCompile(`^(Split|SplitN|SplitAfter|SplitAfterN|SplitSeq|SplitAfterSeq|Cut|CutPrefix|CutSuffix|` +
		`Index|IndexByte|IndexRune|IndexAny|LastIndex|LastIndexByte|LastIndexAny|TrimPrefix|TrimSuffix|Fields|FieldsFunc|FieldsSeq)$`)
	formatFuncs = map[string]bool{"Sprintf": true, "Fprintf": true, "Appendf": true, "Printf": true}
)

// scanTopics returns the findings of the rules above in one file, as
// "file:line:col: what".
func scanTopics(path, rel string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var suffixes []string
	for _, k := range devices.Kinds() {
		suffixes = append(suffixes, k.String())
	}
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		p := fset.Position(n.Pos())
		out = append(out, fmt.Sprintf("%s:%d:%d: ", rel, p.Line, p.Column)+fmt.Sprintf(format, args...))
	}
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ImportSpec:
			return false // an import path ("switchyard/board/update") is no topic
		case *ast.BasicLit:
			if v, ok := stringLit(n); ok {
				for _, s := range suffixes {
					if v == "/"+s || (v == s && strings.Contains(s, "/")) ||
						(strings.HasSuffix(v, "/"+s) && !strings.HasPrefix(v, "/") && !strings.ContainsAny(v, " {")) {
						report(n, "string literal %q is a %q topic's tail", v, s)
						break
					}
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.ADD {
				return true
			}
			ops := flattenAdd(n)
			slash, named := false, ""
			for _, op := range ops {
				if lit, ok := op.(*ast.BasicLit); ok {
					if v, ok := stringLit(lit); ok && strings.Contains(v, "/") {
						slash = true
					}
				} else if named == "" {
					named = names(op, topicName)
				}
			}
			if slash && named != "" {
				report(n, "concatenation of %s with a literal holding '/' builds a topic", named)
			}
			for _, op := range ops {
				ast.Inspect(op, visit)
			}
			return false
		case *ast.CallExpr:
			pkg, fn := calledFunc(n)
			switch {
			case (pkg == "strings" || pkg == "bytes") && splitFuncs.MatchString(fn):
				for _, a := range n.Args {
					if nm := names(a, topicFilterName); nm != "" {
						report(n, "%s.%s on %s splits a topic", pkg, fn, nm)
						break
					}
				}
			case pkg == "fmt" && formatFuncs[fn]:
				fmtArg := 0
				if fn == "Fprintf" || fn == "Appendf" {
					fmtArg = 1
				}
				if len(n.Args) <= fmtArg {
					break
				}
				lit, ok := n.Args[fmtArg].(*ast.BasicLit)
				if v, isStr := stringLit(lit); !ok || !isStr || !strings.Contains(v, "/") {
					break
				}
				for _, a := range n.Args[fmtArg+1:] {
					if nm := names(a, topicName); nm != "" {
						report(n, "fmt.%s of %s with a format holding '/' builds a topic", fn, nm)
						break
					}
				}
			}
		case *ast.SliceExpr:
			if nm := names(n.X, topicFilterName); nm != "" {
				report(n, "slicing %s splits a topic", nm)
			}
		}
		return true
	}
	ast.Inspect(f, visit)
	return out, nil
}

// stringLit returns the value of a string literal.
func stringLit(lit *ast.BasicLit) (string, bool) {
	if lit == nil || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

// flattenAdd returns the operands of a chain of + (a + b + c).
func flattenAdd(e ast.Expr) []ast.Expr {
	if b, ok := ast.Unparen(e).(*ast.BinaryExpr); ok && b.Op == token.ADD {
		return append(flattenAdd(b.X), flattenAdd(b.Y)...)
	}
	return []ast.Expr{e}
}

// calledFunc returns pkg and name of a call pkg.name(...), or "" and "".
func calledFunc(c *ast.CallExpr) (pkg, name string) {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", ""
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return "", ""
	}
	return id.Name, sel.Sel.Name
}

// names returns the first identifier or field name in e that re matches,
// skipping the function names of textPkgs, or "".
func names(e ast.Node, re *regexp.Regexp) string {
	found := ""
	ast.Inspect(e, func(n ast.Node) bool {
		if found != "" {
			return false
		}
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && textPkgs[id.Name] {
				return false
			}
		case *ast.Ident:
			if re.MatchString(n.Name) {
				found = n.Name
			}
		case *ast.FuncLit:
			return false
		}
		return true
	})
	return found
}
