package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/chromedp/chromedp"
)

func main() {
	url := os.Args[1]
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.WindowSize(1280, 800))
	actx, c1 := chromedp.NewExecAllocator(context.Background(), opts...)
	defer c1()
	ctx, c2 := chromedp.NewContext(actx)
	defer c2()
	shot := func(name string) {
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			panic(err)
		}
		os.WriteFile("/tmp/ui/"+name+".png", b, 0o644)
	}
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#search-q"))))
	for _, step := range os.Args[2:] {
		switch {
		case step == "wait":
			time.Sleep(3 * time.Second) // by-hand look, not a test
		case step[0] == '#':
			must(chromedp.Do(ctx, chromedp.Navigate(url[:len("http://127.0.0.1:00000")]+"/"+step)))
		case step[0] == '!':
			v, err := chromedp.Run(ctx, chromedp.Evaluate[any](step[1:]))
			fmt.Println(v, err)
		case step[0] == '@':
			shot(step[1:])
		default:
			must(chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#search-q"), step), chromedp.Click(chromedp.CSS("#search-go"))))
		}
	}
}
