// Drives Debian's Chromium (headless, through playwright-core) over the explorer the
// test started on loopback, and prints one JSON report on stdout for the test to judge:
// every page and link, axe-core's findings, the drawings, and the in-browser checks.
//
//   node explorer_browser.mjs '<json: {base, rpc, shots, asset, files: {...}}>'
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const cfg = JSON.parse(process.argv[2]);
const report = { pages: {}, broken: [], axe: {}, console: [], checks: {}, drawings: {} };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") report.console.push(`${page.url()}: ${m.text()}`); });

  // 1. Crawl: every page reachable from home (bounded), each link's status.
  const seen = new Set(), queue = ["/"], statuses = {};
  const samples = {};  // first page of each path shape, for axe and screenshots
  while (queue.length && seen.size < cfg.maxPages) {
    const path = queue.shift();
    if (seen.has(path)) continue;
    seen.add(path);
    const res = await page.goto(cfg.base + path);
    statuses[path] = res.status();
    const shape = path.split("?")[0].split("/").slice(0, 2).join("/") + (path.split("/").length > 2 ? "/:key" : "");
    if (!(shape in samples)) samples[shape] = path;
    const links = await page.$$eval("a[href]", (as) => as.map((a) => a.getAttribute("href")));
    for (const href of links) {
      if (href.startsWith("/") && !href.startsWith("/api/") && !seen.has(href)) queue.push(href);
      else if (href.startsWith("/api/") && !(href in statuses)) {
        statuses[href] = (await page.request.get(cfg.base + href)).status();
      }
    }
  }
  report.pages = statuses;
  report.broken = Object.entries(statuses).filter(([, s]) => s >= 400).map(([p]) => p);
  report.crawled = seen.size;

  // 2. axe-core on one page of each shape (WCAG 2.1 A and AA rules).
  // (axe is injected, which the pages' CSP rightly refuses: its own context lifts it)
  const axeContext = await browser.newContext({ bypassCSP: true });
  const axePage = await axeContext.newPage();
  for (const [shape, path] of Object.entries(samples)) {
    await axePage.goto(cfg.base + path);
    await axePage.addScriptTag({ content: axeSource });
    const found = await axePage.evaluate(async () => {
      const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, where: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
    });
    report.axe[shape] = found;
  }

  // 3. The drawings: the lineage graph, the round chart, the governance countdowns.
  await page.goto(`${cfg.base}/asset/${cfg.lineageAsset}`);
  report.drawings.lineageBoxes = await page.locator("figure.lineage svg rect.node").count();
  report.drawings.lineageEdges = await page.locator("figure.lineage svg line.edge").count();
  await page.locator("#ancestors > summary").click();  // folds
  report.drawings.ancestorsFolded = !(await page.locator("#ancestors").evaluate((d) => d.open));
  await page.screenshot({ path: `${cfg.shots}/asset.png`, fullPage: true });
  if (cfg.task) {
    await page.goto(`${cfg.base}/task/${cfg.task}`);
    report.drawings.chartLines = await page.locator("figure.chart polyline").count();
    report.drawings.accuracyCells = await page.locator("#rounds tbody tr td:nth-child(5)").allTextContents();
    await page.screenshot({ path: `${cfg.shots}/task.png`, fullPage: true });
  }
  if (cfg.privateTask) {
    await page.goto(`${cfg.base}/task/${cfg.privateTask}`);
    report.drawings.privateChartLines = await page.locator("figure.chart polyline").count();
  }
  await page.goto(`${cfg.base}/energy`);
  report.drawings.energyBars = await page.locator("figure.chart svg rect.bar").count();
  await page.screenshot({ path: `${cfg.shots}/energy.png`, fullPage: true });
  await page.goto(`${cfg.base}/governance`);
  report.drawings.governanceRows = await page.locator("main table tbody tr").count();
  await page.goto(`${cfg.base}/`);
  await page.screenshot({ path: `${cfg.shots}/home.png` });

  // 4. The in-browser checks: on `path`, give `files` to `input` (and the RPC URL to the
  // section's `.rpc` field), wait for the section's verdict.
  async function check(name, path, section, input, files, rpc) {
    await page.goto(cfg.base + path);
    if (rpc) await page.fill(`#${section} .rpc`, cfg.rpc);
    await page.setInputFiles(input, files);
    await page.waitForFunction((id) => ["pass", "fail"].includes(document.querySelector(`#${id} .result`).dataset.state),
      section, { timeout: 30000 });
    const result = page.locator(`#${section} .result`);
    const shown = await page.locator(`#${section} pre.entry`).count() ? await page.locator(`#${section} pre.entry`).textContent() : undefined;
    report.checks[name] = { state: await result.getAttribute("data-state"), text: await result.textContent(), entry: shown };
  }
  for (const [name, c] of Object.entries(cfg.files)) {  // files and folders against assets
    await check(name, `/asset/${c.asset}`, "verify-files", c.folder ? "#verify-folder" : "#verify-file", c.path, c.rpc);
  }
  for (const [name, r] of Object.entries(cfg.rounds || {})) {  // round documents against tasks
    await check(name, `/task/${r.task}`, "verify-round", "#verify-round-file", r.path, r.rpc);
  }
  for (const [name, b] of Object.entries(cfg.bundles)) {  // audit entries from proof bundles
    await check(name, `/log/${b.log}`, "verify-entry", "#verify-bundle", b.path, b.rpc);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
