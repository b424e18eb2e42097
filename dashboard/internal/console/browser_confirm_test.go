package console

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
)

// confirmDialog is what the Console's confirmation dialog shows.
type confirmDialog struct {
	Open                 bool
	Title, Summary, More string
	Rows                 []string // each row's cells, joined by " | "
	Effects              []string
	ReasonRequired       bool
	AsksCount            bool
	OK                   bool // the confirm button is enabled
}

// dialog reads the confirmation dialog.
func (b *browser) dialog() confirmDialog {
	b.t.Helper()
	d, err := chromedp.Run(b.ctx, chromedp.Evaluate[confirmDialog](`(() => {
		const d = document.getElementById("confirm");
		if (!d || !d.open) return {open: false};
		const text = s => (d.querySelector(s) || {}).textContent || "";
		return {
			open: true,
			title: text("#confirm-title"), summary: text(".confirm-summary"), more: text(".confirm-more"),
			rows: Array.from(d.querySelectorAll(".confirm-rows tr[data-id]")).map(tr => Array.from(tr.cells).map(c => c.textContent).join(" | ")),
			effects: Array.from(d.querySelectorAll(".confirm-effects li")).map(li => li.textContent),
			reasonRequired: document.getElementById("confirm-reason").required,
			asksCount: !!document.getElementById("confirm-count"),
			ok: !document.getElementById("confirm-ok").disabled,
		};
	})()`))
	if err != nil {
		b.t.Fatalf("read the confirmation: %v", err)
	}
	return d
}

// confirm answers the confirmation dialog: it types reason (when not
// empty) and, when the dialog asks for it, count, then confirms.
func (b *browser) confirm(reason, count string) chromedp.Action[chromedp.Void] {
	steps := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(css(`#confirm #confirm-ok`))}
	if count != "" {
		steps = append(steps, chromedp.SendKeys(css(`#confirm-count`), count))
	}
	if reason != "" {
		steps = append(steps, chromedp.SendKeys(css(`#confirm-reason`), reason))
	}
	steps = append(steps, chromedp.Click(css(`#confirm-ok`)))
	return chromedp.Steps(steps...)
}

// TestBrowserConfirm: every re-run, bulk re-run, discard and delete asks
// in the page, not with window.prompt, and shows what will happen: the
// count, the first rows with what happens to each, the side effects, a
// reason required for bulk actions, and the count typed in for a re-run
// of everything unfiltered. "Re-run selected…" is not shown while nothing
// is ticked.
func TestBrowserConfirm(t *testing.T) {
	b := setup(t, seeds)
	// A destination, which the side effects name.
	if _, err := b.env.Client.Enqueue(asynq.NewTask("deliver:invoice.paid", nil), asynq.Queue("dest-billing")); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/", opUser, opPass)
	br.do("the list", chromedp.WaitVisible(css(`#bulk-rerun`)))

	if shown := br.get("re-run selected", chromedp.Evaluate[string](`String(getComputedStyle(document.getElementById("rerun-selected")).display !== "none")`)); shown != "false" {
		t.Error(`"Re-run selected…" is shown with nothing ticked`)
	}

	// Re-run all, unfiltered: the count typed in and a reason, both required.
	br.do("re-run all", chromedp.Click(css(`#bulk-rerun`)), chromedp.WaitVisible(css(`#confirm-ok`)))
	d := br.dialog()
	if !d.Open || !strings.Contains(d.Title, "Re-run all 8") {
		t.Fatalf("the bulk re-run's confirmation: %+v", d)
	}
	if d.Summary != "4 run now · 2 copied · 2 skipped" {
		t.Errorf("summary %q", d.Summary)
	}
	if len(d.Rows) != 8 || d.Rows[0] != "evt_08 | invoice.payment_failed | archived | runs now" ||
		!strings.Contains(strings.Join(d.Rows, "\n"), "evt_04 | invoice.paid | completed | copied") ||
		!strings.Contains(strings.Join(d.Rows, "\n"), "evt_07 | charge.failed | active | skipped") {
		t.Errorf("rows:\n%s", strings.Join(d.Rows, "\n"))
	}
	if !strings.Contains(strings.Join(d.Effects, " "), "forwarded again to every destination that takes its type (billing)") {
		t.Errorf("effects %q do not say a copy is forwarded again", d.Effects)
	}
	if !d.ReasonRequired || !d.AsksCount || d.OK {
		t.Errorf("unfiltered: reason required %v, asks the count %v, confirm enabled before either %v", d.ReasonRequired, d.AsksCount, d.OK)
	}
	br.do("a reason alone", chromedp.SendKeys(css(`#confirm-reason`), "INC-9"))
	if br.dialog().OK {
		t.Error("confirm is enabled before the count is typed")
	}
	br.do("a wrong count", chromedp.SendKeys(css(`#confirm-count`), "7"))
	if br.dialog().OK {
		t.Error("confirm is enabled with a wrong count")
	}
	br.shot("confirm-bulk-desktop.png")
	br.do("cancel", chromedp.Click(css(`#confirm-cancel`)))
	if br.dialog().Open {
		t.Error("the dialog stays open after Cancel")
	}
	if info, err := b.env.Inspector.GetTaskInfo("stripe", "evt_08"); err != nil || info.State != asynq.TaskStateArchived {
		t.Errorf("after Cancel evt_08 is %v (%v), want archived", info, err)
	}

	// Re-run selected: the rows ticked, a reason required.
	br.do("tick two", chromedp.Click(css(`tr[data-id=evt_01] input.pick`)), chromedp.Click(css(`tr[data-id=evt_04] input.pick`)),
		chromedp.Click(css(`#rerun-selected`)), chromedp.WaitVisible(css(`#confirm-ok`)))
	d = br.dialog()
	if d.Title != "Re-run 2 selected executions?" || d.Summary != "1 run now · 1 copied · 0 skipped" || !d.ReasonRequired || d.AsksCount || d.OK {
		t.Errorf("re-run selected's confirmation: %+v", d)
	}
	br.do("confirm", br.confirm("INC-9 app down", ""), chromedp.WaitVisible(css(`#toast`)))
	if toast := br.get("toast", chromedp.Text(css(`#toast`))); !strings.HasPrefix(toast, "Re-ran 2 (1 run now, 1 copied)") {
		t.Errorf("toast %q", toast)
	}

	// One execution's re-run on a phone: what happens to it, the reason optional.
	br.do("a completed execution", chromedp.EmulateViewport(390, 844), chromedp.Navigate(br.base+"/executions/evt_03"),
		chromedp.WaitVisible(css(`#rerun`)), chromedp.Click(css(`#rerun`)), chromedp.WaitVisible(css(`#confirm-ok`)))
	d = br.dialog()
	if len(d.Rows) != 1 || !strings.Contains(d.Rows[0], "evt_03 | invoice.payment_failed | completed | copied") || d.ReasonRequired || !d.OK {
		t.Errorf("one re-run's confirmation: %+v", d)
	}
	if w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[Math.ceil(document.getElementById("confirm").getBoundingClientRect().right), window.innerWidth]`)); err != nil || w[0] > w[1] {
		t.Errorf("the dialog at 390 px: right edge and window %v, %v", w, err)
	}
	br.shot("confirm-rerun-phone.png")
	br.do("confirm", br.confirm("", ""), waitURL("/executions/evt_03:rerun:1"))

	// Discard and delete say they cannot be undone; Escape cancels.
	for _, sel := range []string{`#discard`, `#delete`} {
		br.do("open "+sel, chromedp.Navigate(br.base+"/executions/evt_08"), chromedp.WaitVisible(css(sel)), chromedp.Click(css(sel)), chromedp.WaitVisible(css(`#confirm-ok`)))
		d = br.dialog()
		if len(d.Rows) != 1 || !strings.Contains(strings.Join(d.Effects, " "), "cannot be undone") {
			t.Errorf("%s's confirmation: %+v", sel, d)
		}
		br.do("escape", chromedp.KeyEvent("\x1b"))
		if br.dialog().Open {
			t.Errorf("%s: Escape leaves the dialog open", sel)
		}
	}
	if _, err := b.env.Inspector.GetTaskInfo("stripe", "evt_08"); err != nil {
		t.Errorf("evt_08 is gone after two cancelled confirmations: %v", err)
	}
}

// TestBrowserBulkKeptFailure: a failure that only the failure store keeps
// (asynq trimmed it from its archive) is copied by a re-run, and the bulk
// confirmation counts it as copied, as the server then does, not as run
// now; the toast after the re-run tells the same counts.
func TestBrowserBulkKeptFailure(t *testing.T) {
	b := setup(t, seeds)
	b.env.Keep(t, "evt_01", true)
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/?state=archived&customer=cus_X", opUser, opPass)
	br.do("the archived", chromedp.WaitVisible(css(`#bulk-rerun`)), chromedp.Click(css(`#bulk-rerun`)), chromedp.WaitVisible(css(`#confirm-ok`)))
	d := br.dialog()
	rows := strings.Join(d.Rows, "\n")
	if d.Summary != "1 run now · 1 copied · 0 skipped" || !strings.Contains(rows, "evt_01 | invoice.payment_failed | archived | copied") ||
		!strings.Contains(rows, "evt_08 | invoice.payment_failed | archived | runs now") {
		t.Errorf("the confirmation says %q, rows:\n%s\nwant 1 run now and 1 copied: evt_01 is kept only", d.Summary, rows)
	}
	br.shot("confirm-kept-desktop.png")
	br.do("confirm", br.confirm("INC-9 kept failure", ""), chromedp.WaitVisible(css(`#toast`)))
	var toast string
	poll.Wait(10*time.Second, "the bulk re-run's toast", func() error {
		toast = br.get("toast", chromedp.Text(css(`#toast`)))
		if !strings.Contains(toast, "1 run now, 1 copied") {
			return errors.New("not yet")
		}
		return nil
	})
	if !strings.Contains(toast, "1 run now, 1 copied") {
		t.Errorf("toast %q; want 1 run now, 1 copied, as the confirmation said", toast)
	}
}
