// The portal in a real browser, as a user uses it (driven by
// crates/cli/tests/it/portal.rs). Playwright drives Debian's Chromium.
//   node portal.mjs   with PLAYWRIGHT (the playwright-core folder), CHROMIUM,
//   PORTAL (http://127.0.0.1:PORT/), DASHBOARD (http://127.0.0.1:PORT/),
//   SHOTS (a folder for screenshots)
// Prints one JSON object of what it saw; exits non-zero on any failure.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const shots = process.env.SHOTS;
const seen = {};
const timeout = 15000;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
try {
  // Two people, each with a page of their own (separate sessions).
  const a = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const b = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  for (const p of [a, b]) {
    p.setDefaultTimeout(timeout);
    p.on("pageerror", (e) => { throw e; });
    p.on("console", (m) => { if (m.type() === "error") console.error(`page: ${m.text()}`); });
    await p.goto(process.env.PORTAL);
    await p.waitForFunction(() => document.getElementById("live-status").textContent === "live");
  }
  seen.seedTickets = await a.locator("#tickets li").count();
  await a.waitForFunction(() => document.querySelectorAll("#notices li strong").length > 0);
  seen.notices = await a.locator("#notices li strong").allTextContents();
  await a.screenshot({ path: path.join(shots, "portal-home.png") });

  // Sign in, open a ticket.
  await a.fill("#signin-name", "Ada");
  await a.click("#signin");
  await a.waitForSelector("#whoami:not([hidden])");
  seen.whoami = await a.textContent("#whoami");
  seen.signinFormHidden = await a.isHidden("#signin-form");
  const title = `Printer on fire ${Date.now()}`;
  await a.fill("#new-title", title);
  await a.fill("#new-body", "Smoke is coming out of the second floor printer.");
  await a.click("#create");
  await a.waitForFunction((t) => document.getElementById("detail-title")?.textContent.includes(t), title);

  // The other page sees it arrive, without a reload: the WebSocket API.
  await b.waitForFunction((t) => [...document.querySelectorAll("#tickets li")].some((li) => li.textContent.includes(t)), title);
  seen.liveOnOtherPage = true;
  await b.screenshot({ path: path.join(shots, "portal-live.png") });

  // A reply, and an attachment uploaded through a presigned URL.
  await a.fill("#reply-body", "Fire brigade called.");
  await a.click("#reply");
  await a.waitForFunction(() => document.getElementById("replies").textContent.includes("Fire brigade called."));
  const content = "paper jam at 11:02\nthen smoke\n";
  await a.setInputFiles("#attach-file", { name: "printer log.txt", mimeType: "text/plain", buffer: Buffer.from(content) });
  await a.click("#attach");
  await a.waitForSelector("#attachments a").catch(async (e) => {
    throw new Error(`no attachment listed (the page says: ${await a.textContent("#detail-error")}): ${e.message}`);
  });
  seen.attachment = await a.textContent("#attachments a");
  // The file really is in the bucket: read back through its presigned link.
  const href = await a.getAttribute("#attachments a", "href");
  seen.attachmentBody = await a.evaluate(async (u) => (await fetch(u)).text(), href);
  seen.detailError = await a.textContent("#detail-error");
  await a.screenshot({ path: path.join(shots, "portal-ticket.png") });

  // Search finds the new ticket and only it.
  await b.fill("#search", "printer on fire");
  await b.click("#search-form button");
  await b.waitForFunction(() => document.querySelectorAll("#tickets li").length === 1);
  seen.searchHits = await b.locator("#tickets li strong").allTextContents();

  // The dashboard counts the calls.
  await a.goto(process.env.DASHBOARD);
  await a.waitForFunction(() => Number(document.getElementById("t-invocations").textContent.replace(/,/g, "")) > 0);
  seen.dashboardRequests = Number((await a.textContent("#t-requests")).replace(/,/g, ""));
  seen.dashboardFunctions = await a.locator("#functions tbody tr td:first-child").allTextContents();
  await a.screenshot({ path: path.join(shots, "portal-dashboard.png"), fullPage: true });
  seen.title = title;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
