package manifests

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// frontPageMax is the most README.md may weigh: a front page a newcomer
// reads in five minutes. Reference text belongs in the folders' READMEs.
const frontPageMax = 15 * 1024

// TestFrontPageSize keeps README.md short.
func TestFrontPageSize(t *testing.T) {
	fi, err := os.Stat(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > frontPageMax {
		t.Errorf("README.md is %d bytes, over %d: move reference text to a folder's README.md and link to it", fi.Size(), frontPageMax)
	}
}

// readmeMax is the most any other README.md may weigh: past it, a section
// moves to a README beside what it describes (as Performance moved to
// deploy/bench).
const readmeMax = 30 * 1024

// TestReadmeSizes keeps every folder's README.md a page one can read.
func TestReadmeSizes(t *testing.T) {
	docs := markdownFiles(t, root)
	checked := 0
	for _, doc := range docs {
		if path.Base(doc) != "README.md" {
			continue
		}
		checked++
		fi, err := os.Stat(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > readmeMax {
			t.Errorf("%s is %d bytes, over %d: move a section to a README.md beside what it describes, and link to it", doc, fi.Size(), readmeMax)
		}
	}
	if checked < 8 {
		t.Fatalf("checked %d READMEs of %q; the walk is wrong", checked, docs)
	}
}

// TestMarkdownLinks checks every relative link of every tracked Markdown
// file: its target exists, and its #fragment names a heading of the target
// Markdown file, by GitHub's anchor rules.
func TestMarkdownLinks(t *testing.T) {
	docs := markdownFiles(t, root)
	if !slices.Contains(docs, "README.md") {
		t.Fatalf("found no README.md among %q", docs)
	}
	for _, p := range checkLinks(root, docs) {
		t.Error(p)
	}
}

// TestCheckLinksFindsBrokenLinks shows that checkLinks fails on each kind
// of broken link and passes the good ones, in a tree of its own.
func TestCheckLinksFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"README.md": "# Top\n\n## Quick start\n\n" +
			"[ok](sub/README.md#the-consoles-json-api) [ok](#quick-start) [ok](sub/) [ok](sub/README.md)\n" +
			"[ok](https://example.com/x.md#nowhere) [ok](mailto:a@example.com) `[code](missing.md)`\n" +
			"[ok](sub/README.md#twice-1 \"a title\") ![ok](sub/pic.png) [ok](sub#more)\n" +
			"[bad file](missing.md)\n" +
			"[bad anchor](sub/README.md#the-console's-json-api)\n" +
			"[bad self](#quick-start-1)\n" +
			"[bad dir anchor](sub/#nowhere)\n" +
			"[bad ref]: ../outside-missing.md\n" +
			"```\n[fenced](missing-too.md)\n```\n",
		"sub/README.md": "# Sub\n\n## The Console's JSON API\n\n## Twice\n\n## Twice\n\n## More\n\n" +
			"```sh\n# Not a heading\n```\n[bad fenced-heading anchor](#not-a-heading)\n",
		"sub/pic.png": "",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := checkLinks(dir, []string{"README.md", "sub/README.md"})
	want := []string{
		`README.md:8: link "missing.md": no such file`,
		`README.md:9: link "sub/README.md#the-console's-json-api": sub/README.md has no heading with anchor "the-console's-json-api"`,
		`README.md:10: link "#quick-start-1": README.md has no heading with anchor "quick-start-1"`,
		`README.md:11: link "sub/#nowhere": sub/README.md has no heading with anchor "nowhere"`,
		`README.md:12: link "../outside-missing.md": no such file`,
		`sub/README.md:14: link "#not-a-heading": sub/README.md has no heading with anchor "not-a-heading"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("checkLinks found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Quick start":                              "quick-start",
		"The Console's JSON API":                   "the-consoles-json-api",
		"Authoritative copies and Stripe's errors": "authoritative-copies-and-stripes-errors",
		"Debugging with redis-cli":                 "debugging-with-redis-cli",
		"Sign-in, roles and CSRF":                  "sign-in-roles-and-csrf",
		"`pkg/stripetask` and TASK_RETENTION":      "pkgstripetask-and-task_retention",
		"A [linked](x.md) heading":                 "a-linked-heading",
		"Événements  reçus":                        "événements--reçus",
	} {
		if got := anchor(heading); got != want {
			t.Errorf("anchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

// markdownFiles lists the Markdown files git tracks under dir, as slash
// paths from dir; without git, every *.md file outside hidden directories.
func markdownFiles(t *testing.T, dir string) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", dir, "ls-files", "-z", "--", "*.md").Output()
	if err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files
	}
	t.Logf("git ls-files: %v; walking %s instead", err, dir)
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	// inlineLink is [text](target) or ![alt](target), with an optional
	// title after the target.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// refLink is a reference definition: [name]: target.
	refLink = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	// codeSpan is inline code, whose brackets are not links.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	// scheme starts an absolute URL (https:, mailto:, …).
	scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// checkLinks checks the relative links of docs (slash paths from dir) and
// returns one line per broken one.
func checkLinks(dir string, docs []string) []string {
	var problems []string
	anchors := map[string]map[string]bool{} // Markdown file → its anchors
	anchorsOf := func(doc string) (map[string]bool, error) {
		if a, ok := anchors[doc]; ok {
			return a, nil
		}
		a, err := headingAnchors(filepath.Join(dir, filepath.FromSlash(doc)))
		if err != nil {
			return nil, err
		}
		anchors[doc] = a
		return a, nil
	}
	for _, doc := range docs {
		links, err := relativeLinks(filepath.Join(dir, filepath.FromSlash(doc)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", doc, err))
			continue
		}
		for _, l := range links {
			bad := func(format string, args ...any) {
				problems = append(problems, fmt.Sprintf("%s:%d: link %q: ", doc, l.line, l.target)+fmt.Sprintf(format, args...))
			}
			target, fragment, _ := strings.Cut(l.target, "#")
			if p, err := url.PathUnescape(target); err == nil {
				target = p
			}
			if f, err := url.PathUnescape(fragment); err == nil {
				fragment = f
			}
			file := doc // a bare #fragment is in the same document
			if target != "" {
				file = path.Join(path.Dir(doc), target)
				if file == ".." || strings.HasPrefix(file, "../") {
					bad("no such file")
					continue
				}
				fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(file)))
				if err != nil {
					bad("no such file")
					continue
				}
				if fi.IsDir() {
					// GitHub shows a folder's README.md, anchors included.
					file = path.Join(file, "README.md")
				}
			}
			if fragment == "" || !strings.HasSuffix(strings.ToLower(file), ".md") {
				continue
			}
			a, err := anchorsOf(file)
			if errors.Is(err, fs.ErrNotExist) {
				bad("%s does not exist to hold anchor %q", file, fragment)
				continue
			}
			if err != nil {
				bad("%v", err)
				continue
			}
			if !a[strings.ToLower(fragment)] {
				bad("%s has no heading with anchor %q", file, fragment)
			}
		}
	}
	return problems
}

// docLink is one relative link of a Markdown file.
type docLink struct {
	line   int
	target string
}

// relativeLinks returns the links of a Markdown file that are not absolute
// URLs, outside fenced code blocks and code spans.
func relativeLinks(file string) ([]docLink, error) {
	var links []docLink
	err := eachProseLine(file, func(n int, line string) {
		line = codeSpan.ReplaceAllString(line, "")
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			targets = append(targets, m[1])
		}
		for _, tg := range targets {
			if tg == "" || scheme.MatchString(tg) || strings.HasPrefix(tg, "//") {
				continue
			}
			links = append(links, docLink{line: n, target: tg})
		}
	})
	return links, err
}

// headingAnchors returns the anchors GitHub gives the ATX headings of a
// Markdown file: the second heading with the same anchor gets "-1", the
// third "-2", and so on.
func headingAnchors(file string) (map[string]bool, error) {
	anchors := map[string]bool{}
	seen := map[string]int{}
	heading := regexp.MustCompile(`^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$`)
	err := eachProseLine(file, func(_ int, line string) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			return
		}
		a := anchor(m[1])
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	})
	return anchors, err
}

// anchor is GitHub's anchor of a heading's text: links reduced to their
// text, lower case, every character but letters, digits, spaces, '-' and
// '_' dropped, and each space turned into '-'.
func anchor(heading string) string {
	heading = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// eachProseLine calls fn with each line of a Markdown file that is not in a
// fenced code block, numbered from 1.
func eachProseLine(file string, fn func(n int, line string)) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fence := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]+" ") == "" {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			for _, c := range trimmed[3:] {
				if c != rune(fence[0]) {
					break
				}
				fence += string(c)
			}
			continue
		}
		fn(n, line)
	}
	return sc.Err()
}
