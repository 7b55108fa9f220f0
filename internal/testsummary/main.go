// Command testsummary reads `go test -json` on standard input, prints what
// a plain `go test` would (package results, and the full output of every
// failing or skipped test), and closes with one line
// "N passed, N failed, N skipped", so skipped tests are counted in the
// open rather than passing quietly. It exits 1 if any test or package
// failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	passed, failed, skipped := 0, 0, 0
	pkgFailed := false
	outputs := map[string][]string{} // package/test -> output lines
	var skippedTests []string

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Println(string(line)) // not an event: a build error, pass it through
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output", "build-output":
			outputs[key] = append(outputs[key], e.Output)
		case "pass":
			if e.Test != "" {
				passed++
			} else {
				fmt.Printf("ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
			}
			delete(outputs, key)
		case "skip":
			if e.Test != "" {
				skipped++
				skippedTests = append(skippedTests, key+": "+lastReason(outputs[key]))
			} else if strings.Contains(strings.Join(outputs[key], ""), "no test files") {
				fmt.Printf("?   \t%s\t[no test files]\n", e.Package)
			}
			delete(outputs, key)
		case "fail":
			if e.Test != "" {
				failed++
			} else {
				pkgFailed = true
			}
			fmt.Print(strings.Join(outputs[key], ""))
			if e.Test == "" {
				fmt.Printf("FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
			}
			delete(outputs, key)
		}
	}
	if len(skippedTests) > 0 {
		sort.Strings(skippedTests)
		fmt.Println("skipped tests:")
		for _, s := range skippedTests {
			fmt.Println("  " + s)
		}
	}
	if pkgFailed && failed == 0 {
		failed = 1 // a package that failed to build or panicked outside a test
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || pkgFailed {
		os.Exit(1)
	}
}

func lastReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "===") {
			return l
		}
	}
	return "(no reason given)"
}
