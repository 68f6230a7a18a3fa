// Package uitest drives the control API's browser UI in a real browser
// (chromium, through chromedp) on a loopback network of servents. Its tests
// skip, saying why, when no chromium is installed. With
// GNUTELLA_SCREENSHOTS=1 they write the pages' pictures into
// docs/screenshots/ (README.md shows them).
package uitest

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gnutella/protocol"
	"gnutella/servent"
	"gnutella/servent/control"
	"gnutella/testnet"
	"gnutella/testnet/await"
	"gnutella/transfer"
)

// chromium finds a Chromium or Chrome binary ("" when there is none).
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// nodeConfig is a testnet's servent with a data folder of its own.
func nodeConfig(t *testing.T) servent.NodeConfig {
	c := testnet.BaseNodeConfig()
	c.DataDir = t.TempDir()
	return c
}

func startNode(t *testing.T, c servent.NodeConfig) *servent.Node {
	t.Helper()
	n, err := servent.NewNode(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

// share writes files (name -> content) into a new folder and returns it.
func share(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func content(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) * 2654435761
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func urnOf(b []byte) string { return protocol.SHA1(sha1.Sum(b)).String() }

func hashed(n *servent.Node) func() bool {
	return func() bool {
		p := n.Library.Progress()
		return p.Files > 0 && p.HashedFiles == p.Files
	}
}

// newPage starts a headless browser, closed at the end of the test.
func newPage(t *testing.T, bin string) *page {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.Flag("hide-scrollbars", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	return &page{t: t, ctx: bctx}
}

// page is a browser tab on the UI.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) run(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// js runs a JavaScript statement in the page.
func (p *page) js(code string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](code)); err != nil {
		p.t.Fatalf("%s: %v", code, err)
	}
}

// until waits for a JavaScript expression to be true in the page.
func (p *page) until(what, js string) {
	p.t.Helper()
	await.Until(p.t, what, func() bool {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			p.t.Fatalf("evaluating %s: %v", js, err)
		}
		return ok
	})
}

// screenshot writes the page into docs/screenshots/name.png when
// GNUTELLA_SCREENSHOTS is set.
func (p *page) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("GNUTELLA_SCREENSHOTS") == "" {
		return
	}
	p.js(`document.querySelector("#toasts").replaceChildren()`)
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "..", "docs", "screenshots", name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// downloadIn is a JS expression: the download card of file name is in
// state st.
func downloadIn(name, st string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(".download")].some(d => d.dataset.state === %q && d.querySelector(".title").textContent === %q)`, st, name)
}

func downloadButton(name, action string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(".download")].find(d => d.querySelector(".title").textContent === %q).querySelector('[data-action=%q]')`, name, action)
}

// The whole UI in a browser: a search typed into the page shows the other
// servents' results grouped by file; a download started from the page
// completes with the right SHA-1; pause, resume and cancel work from the
// page; the library and the network pages show the shares and the links.
func TestBrowserUI(t *testing.T) {
	t.Parallel()
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium binary (apt-get install chromium, or set CHROMIUM=/path/to/chrome): the browser UI is not tested")
	}
	koala := content(1, 3<<20)
	facts := content(2, 200<<10)
	wombat := content(3, 8<<20)

	// b and c share the same koala song (two sources), c also the facts;
	// d shares a big wombat film, slowly, to pause and cancel.
	cb, cc, cd := nodeConfig(t), nodeConfig(t), nodeConfig(t)
	cb.ShareDirs = []string{share(t, map[string][]byte{"koala singing.ogg": koala})}
	cc.ShareDirs = []string{share(t, map[string][]byte{"koala singing.ogg": koala, "koala facts.txt": facts})}
	cd.ShareDirs = []string{share(t, map[string][]byte{"wombat documentary.mkv": wombat})}
	cd.UploadRate = 96 << 10
	b, c, d := startNode(t, cb), startNode(t, cc), startNode(t, cd)

	ca := nodeConfig(t)
	ca.DownloadDir = t.TempDir()
	mine := share(t, map[string][]byte{"echidna notes.txt": content(4, 50<<10), "platypus.png": content(5, 300<<10), "quoll call.ogg": content(6, 700<<10)})
	ca.ShareDirs = []string{mine}
	a := startNode(t, ca)
	for _, n := range []*servent.Node{b, c, d} {
		await.Until(t, "the shared files hashed", hashed(n))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := a.Connect(ctx, n.Addr())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	await.Until(t, "a's files hashed", hashed(a))
	ctl, err := control.Start(a, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()

	p := newPage(t, bin)

	// Logging in: the front page without a cookie says how.
	p.run(chromedp.Navigate("http://" + ctl.Addr() + "/"))
	p.until("the login help", `document.body.innerText.includes("gnutella ui")`)
	p.run(chromedp.Navigate(ctl.LoginURL()))
	p.run(chromedp.WaitVisible(chromedp.CSS("#search-q")))
	p.until("the event stream", `document.querySelector("#conn").classList.contains("ok")`)

	// Search: grouped results, the koala song with two sources.
	p.run(chromedp.SendKeys(chromedp.CSS("#search-q"), "koala"), chromedp.Click(chromedp.CSS("#search-go")))
	song := fmt.Sprintf(`document.querySelector('tr[data-urn=%q]')`, urnOf(koala))
	p.until("the koala song from two sources", song+`?.querySelector(".sources").textContent === "2"`)
	p.until("the koala facts", fmt.Sprintf(`document.querySelector('tr[data-urn=%q]')?.querySelector(".sources").textContent === "1"`, urnOf(facts)))
	rows, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#results tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Errorf("%d result rows, want 2 (one per file)", rows)
	}
	p.until("human sizes", song+`.children[1].textContent === "3.00 MiB"`)
	p.screenshot("search")

	// Download the song from both sources: it completes, right SHA-1 on disk.
	p.js(song + `.querySelector(".download-btn").click()`)
	p.run(chromedp.Navigate("http://" + ctl.Addr() + "/#downloads"))
	p.until("the song downloaded", downloadIn("koala singing.ogg", "done"))
	got, err := os.ReadFile(filepath.Join(ca.DownloadDir, "koala singing.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	if urnOf(got) != urnOf(koala) {
		t.Fatalf("downloaded file has SHA-1 %s, want %s", urnOf(got), urnOf(koala))
	}

	// The slow film: pause, resume and cancel it from the page.
	p.run(chromedp.Navigate("http://" + ctl.Addr() + "/#search"))
	p.run(chromedp.WaitVisible(chromedp.CSS("#search-q")))
	p.js(`document.querySelector("#search-q").value = ""`)
	p.run(chromedp.SendKeys(chromedp.CSS("#search-q"), "wombat"), chromedp.Click(chromedp.CSS("#search-go")))
	film := fmt.Sprintf(`document.querySelector('tr[data-urn=%q]')`, urnOf(wombat))
	p.until("the wombat film", film+` !== null`)
	p.js(film + `.querySelector(".download-btn").click()`)
	p.run(chromedp.Navigate("http://" + ctl.Addr() + "/#downloads"))
	p.until("the film downloading", downloadIn("wombat documentary.mkv", "downloading")+` && document.querySelector('.download[data-state=downloading] .have').textContent.match(/^[1-9]/) !== null`)
	p.screenshot("downloads")
	p.js(downloadButton("wombat documentary.mkv", "pause") + `.click()`)
	p.until("the film paused", downloadIn("wombat documentary.mkv", "paused"))
	filmStatus := func() transfer.Status {
		for _, st := range a.Downloads.List() {
			if st.Name == "wombat documentary.mkv" {
				return st
			}
		}
		t.Fatal("the film is not among the downloads")
		return transfer.Status{}
	}
	if st := filmStatus(); st.State != transfer.StatePaused {
		t.Fatalf("after Pause the servent says %s", st.State)
	}
	p.js(downloadButton("wombat documentary.mkv", "resume") + `.click()`)
	await.Until(t, "the film going again", func() bool { s := filmStatus().State; return s != transfer.StatePaused })
	p.js(downloadButton("wombat documentary.mkv", "cancel") + `.click()`)
	p.until("the film cancelled", downloadIn("wombat documentary.mkv", "cancelled"))
	if st := filmStatus(); st.State != transfer.StateCancelled {
		t.Fatalf("after Cancel the servent says %s", st.State)
	}

	// Library: a's own files, all hashed; a rescan finds a new one.
	p.run(chromedp.Navigate("http://" + ctl.Addr() + "/#library"))
	p.until("the shared files listed", `document.querySelectorAll("#shares tbody tr").length === 3`)
	p.until("hashing complete", `document.querySelector("#lib-hashing").textContent.includes("3 of 3 files hashed")`)
	p.screenshot("library")
	if err := os.WriteFile(filepath.Join(mine, "bilby.txt"), content(7, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	p.run(chromedp.Click(chromedp.CSS("#rescan")))
	p.until("the new file after the rescan", `[...document.querySelectorAll("#shares tbody td.name")].some(td => td.textContent === "bilby.txt")`)

	// Network: the three links, with their user agent.
	p.run(chromedp.Navigate("http://" + ctl.Addr() + "/#network"))
	for _, n := range []*servent.Node{b, c, d} {
		p.until("the link to "+n.Addr().String(), fmt.Sprintf(`document.querySelector('#links tr[data-remote=%q]') !== null`, n.Addr().String()))
	}
	p.until("the link count", `document.querySelector("#link-count").textContent === "3"`)
	p.until("the user agent", `document.querySelector("#links tbody").innerText.includes("gnutella")`)
	p.until("a graph with a few samples", `document.querySelector("#graph").width > 0`)
	// Traffic for the graph: a search per second it draws, for a few seconds.
	for i := range 8 {
		if _, err := ctl.StartSearch(control.SearchRequest{Query: "koala " + strconv.Itoa(i), TimeoutMS: 1000}); err != nil {
			t.Fatal(err)
		}
		p.until("a point of the graph", fmt.Sprintf("net.samples.length > %d", i+1))
	}
	p.until("messages counted", `[...document.querySelectorAll("#links tbody tr")].some(tr => !tr.children[6].textContent.startsWith("0 /"))`)
	p.screenshot("network")
}

// The Testnet page of the demo's leaf draws the network and one spread per
// strategy, and plays them.
func TestBrowserTestnetPage(t *testing.T) {
	t.Parallel() // the demo's searches mostly wait for their timeouts
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium binary (apt-get install chromium, or set CHROMIUM=/path/to/chrome): the browser UI is not tested")
	}
	cfg := testnet.DemoConfig{Ultrapeers: 3, Leaves: 12, Firewalled: 1, Seed: 3, Dir: t.TempDir()}
	if os.Getenv("GNUTELLA_SCREENSHOTS") != "" {
		cfg = testnet.DefaultDemoConfig() // the picture of README.md: the demo as `gnutella testnet` runs it
		cfg.Dir = t.TempDir()
	}
	demo, err := testnet.RunDemo(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()
	if !demo.OK() {
		t.Fatalf("demo steps failed: %+v", demo.Steps())
	}
	p := newPage(t, bin)
	p.run(chromedp.Navigate(demo.Control.LoginURL()))
	p.run(chromedp.WaitVisible(chromedp.CSS("#search-q")))
	p.until("the Testnet tab", `!document.querySelector("#nav-testnet").hidden`)
	p.run(chromedp.Navigate("http://" + demo.Control.Addr() + "/#testnet"))
	p.until("five spreads drawn", `document.querySelectorAll(".spread canvas").length === 5 && [...document.querySelectorAll(".spread .facts")].every(f => f.textContent.includes("servents reached"))`)
	for _, st := range []string{"flood", "ring", "walk", "gossip"} {
		p.until(st+" reaches servents", fmt.Sprintf(`document.querySelector('.spread[data-strategy^=%q] .facts').textContent.match(/, ([0-9]+) of [0-9]+ servents reached/)[1] > 1`, st))
	}
	p.js(`document.querySelector("#spread-speed").value = "4"; document.querySelector("#spread-play").click()`)
	p.until("the animation at its start", `document.querySelector(".spread .facts").textContent.match(/^([0-9]+) of/)[1] < 5`)
	p.until("the animation played out", `tn.step >= Math.max(...tn.graph.spreads.map(s => s.copies.length))`)
	p.screenshot("testnet")
}
