// Command hello prints hello: the smallest command for BuildBinary's test.
package main

import "fmt"

func main() { fmt.Println("hello") }
