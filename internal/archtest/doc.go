// Package archtest holds the architecture rules of DEVELOPERS.md "Style" as
// tests, so that a change breaking one fails `go test` naming the offending
// import, line or file, instead of waiting for a reviewer to notice:
//
//   - devices imports only the standard library, also transitively;
//   - broker and wsgateway never import each other, also transitively;
//   - only cmd/... imports github.com/spf13/viper, also transitively;
//   - topic strings are built and split in devices/topics.go only;
//   - git tracks no executable binaries and no file over 1 MiB outside
//     testdata/ and docs/ directories.
//
// The import rules read `go list -deps -json ./...`, the production import
// graph: test files may import what their tests need. board/imports_test.go
// keeps the stricter TinyGo allowlist of the firmware core. The package has
// no code outside its tests.
package archtest
