package manifests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// configTableHeader starts the documented table of every variable.
const configTableHeader = "| variable | used by | default | meaning |"

// configDoc is the document that holds the table, from the root.
const configDoc = "deploy/README.md"

// docRow is one documented variable: the commands the table says read it.
type docRow struct {
	usedBy []string
	line   int
}

// configTable parses the configuration table of configDoc: variable name →
// the commands in its "used by" column ("all" is every command, the tools
// such as recover included; "tests" is none of them), over all of the variable's rows.
func configTable(t *testing.T) map[string]docRow {
	t.Helper()
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
	rows := map[string]docRow{}
	for _, r := range tableRows(t, configDoc, configTableHeader, 4) {
		var usedBy []string
		for _, c := range strings.Split(r.cells[2], ",") {
			switch c = strings.TrimSpace(c); c {
			case "all":
				usedBy = append(usedBy, documented()...)
			case "tests":
			default:
				if !slices.Contains(documented(), c) {
					t.Errorf("%s:%d: used by %q, which is not a command", configDoc, r.line, c)
				}
				usedBy = append(usedBy, c)
			}
		}
		for _, m := range name.FindAllStringSubmatch(r.cells[1], -1) {
			// A variable with different defaults per command has a row
			// for each.
			row := rows[m[1]]
			row.usedBy = append(row.usedBy, usedBy...)
			row.line = r.line
			rows[m[1]] = row
		}
	}
	if len(rows) < 10 {
		t.Fatalf("%s's configuration table lists %d variables; the parser is wrong", configDoc, len(rows))
	}
	return rows
}

// tableRow is one row of a Markdown table: its cells, split at "|" (the
// first and last empty), and its line number.
type tableRow struct {
	cells []string
	line  int
}

// tableRows returns the rows of the table of doc (a path from the root)
// whose header line is header, each with at least cells cells.
func tableRows(t *testing.T, doc, header string, cells int) []tableRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, doc))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	start := slices.Index(lines, header)
	if start < 0 {
		t.Fatalf("%s has no table %q", doc, header)
	}
	var rows []tableRow
	for i := start + 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
		c := strings.Split(lines[i], "|")
		if len(c) < cells {
			t.Fatalf("%s:%d: not a table row", doc, i+1)
		}
		rows = append(rows, tableRow{c, i + 1})
	}
	return rows
}

// TestConfigurationTable checks configDoc's configuration table against
// the code: every variable a command reads has a row, and each row's "used
// by" column names exactly the commands that read it.
func TestConfigurationTable(t *testing.T) {
	rows := configTable(t)
	for _, c := range documented() {
		s := commandSource(t, c)
		for v := range s.vars {
			row, ok := rows[v]
			if !ok {
				t.Errorf("%s reads %s, which the configuration table of %s lacks", c, v, configDoc)
				continue
			}
			if !slices.Contains(row.usedBy, c) {
				t.Errorf("%s:%d: %s is used by %s, which its row does not say", configDoc, row.line, v, c)
			}
		}
	}
	for v, row := range rows {
		for _, c := range row.usedBy {
			if !commandSource(t, c).vars[v] {
				t.Errorf("%s:%d: %s's row says %s uses it, but %s never reads it", configDoc, row.line, v, c, c)
			}
		}
	}
}
