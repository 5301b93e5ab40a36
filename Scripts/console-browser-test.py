#!/usr/bin/env python3
"""The console in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven
by Selenium, with axe-core (axe-selenium-python) checking every page.

It starts `fieldsync console` on a temporary replica and:
- adds an incident through the form, with an Arabic title, and checks it reads right to left;
- edits it;
- imports a bundle (made by a second replica that edited the same field) that creates a conflict;
- resolves the conflict with a note on the conflicts page;
- checks through the CLI that `show --history` holds the resolution, signed by this replica;
- renders a record titled <script>alert(1)</script> as text, with no alert;
- saves screenshots (list, incident, conflict review, chart) to the screenshots folder;
- runs axe on every page: no violation of impact "serious" or "critical".

Usage: console-browser-test.py --fieldsync BIN --workdir DIR --screenshots DIR
Exits non-zero, saying why, on the first failure. Run by ConsoleBrowserTests (swift test).
"""
import argparse
import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from axe_selenium_python import Axe

ARABIC_TITLE = "إعدام ميداني قرب المخبز"


def fail(message):
    print(f"console-browser-test: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


class Replica:
    def __init__(self, binary, path):
        self.binary, self.path = binary, path

    def run(self, *arguments, check_status=True):
        result = subprocess.run([self.binary, *arguments, "--store", self.path], capture_output=True, text=True, timeout=120)
        if check_status and result.returncode != 0:
            fail(f"fieldsync {' '.join(arguments)} exited {result.returncode}: {result.stderr.strip()}")
        return result


def start_console(binary, store):
    process = subprocess.Popen(
        [binary, "console", "--store", store, "--no-open", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline().strip()
    prefix = "fieldsync console: "
    if not line.startswith(prefix):
        process.kill()
        fail(f"the console's first line is not its URL: {line!r} {process.stderr.read()}")
    return process, line[len(prefix):]


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100", "--lang=en"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def axe_check(driver, page):
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    bad = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
    check(not bad, f"axe on {page}: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']}: " + " / ".join(n.get("failureSummary", "") + " at " + str(n.get("target")) for n in v["nodes"][:3]) for v in bad))
    return len(results["violations"])


def navigate(driver, element):
    """Clicks a link or button that loads a new page, and waits for that page."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(page))
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def submit(driver, selector="main form button[type=submit]"):
    navigate(driver, driver.find_element(By.CSS_SELECTOR, selector))


def link(driver, text):
    navigate(driver, driver.find_element(By.LINK_TEXT, text))


def fill(driver, name, value):
    element = driver.find_element(By.NAME, name)
    element.clear()
    element.send_keys(value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fieldsync", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--screenshots", required=True)
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    a = Replica(args.fieldsync, os.path.join(args.workdir, "documenter.sqlite"))
    b = Replica(args.fieldsync, os.path.join(args.workdir, "colleague.sqlite"))
    a.run("init", "--name", "Rima", "--plaintext")
    b.run("init", "--name", "Omar", "--plaintext")
    node = json.loads(a.run("status", "--json").stdout)["node"]
    console, url = start_console(args.fieldsync, a.path)
    driver = browser()
    try:
        # Signing in: the one-time link becomes a cookie; the link does not work twice.
        driver.get(url)
        check(driver.current_url.endswith("/incidents"), f"login went to {driver.current_url}")
        check(driver.title.startswith("Incidents"), f"title {driver.title!r}")

        # Add through the form, with an Arabic title.
        link(driver, "New incident")
        fill(driver, "f.title", ARABIC_TITLE)
        fill(driver, "f.occurred.start", "2025-03-07")
        fill(driver, "f.location.place", "المختارية")
        fill(driver, "f.location.governorate", "Latakia")
        fill(driver, "f.casualties.killed", "12")
        fill(driver, "f.narrative", "شهود يصفون رجالاً مسلحين ينتقلون من بيت إلى بيت.")
        driver.find_element(By.ID, "f-violations-summary-execution").click()
        fill(driver, "n.victims.0.pseudonym", "V-01")
        submit(driver)
        heading = driver.find_element(By.TAG_NAME, "h1")
        check(heading.text == ARABIC_TITLE, f"the incident page's heading is {heading.text!r}")
        direction = driver.execute_script("return getComputedStyle(arguments[0]).direction", heading)
        check(direction == "rtl", f"the Arabic title reads {direction}, not right to left")
        record = driver.current_url.split("/incidents/")[1].split("?")[0]

        # Edit it: the form keeps every value, and one field changes.
        link(driver, "Edit")
        check(driver.find_element(By.NAME, "f.title").get_attribute("value") == ARABIC_TITLE, "the edit form lost the title")
        fill(driver, "f.casualties.killed", "14")
        submit(driver)
        check("Saved as a new signed revision" in driver.page_source, "no confirmation after the edit")
        check(">14<" in driver.page_source, "the edit is not shown")

        # A colleague's concurrent edit of the same field, brought by a bundle.
        bundle = os.path.join(args.workdir, "to-colleague.fsbundle")
        a.run("bundle", "export", "--out", bundle, "--plaintext-bundle")
        b.run("bundle", "import", bundle)
        b.run("edit", record, "--set", "casualties.killed=16")
        from_colleague = os.path.join(args.workdir, "from-colleague.fsbundle")
        b.run("bundle", "export", "--out", from_colleague, "--plaintext-bundle")
        link(driver, "Edit")
        fill(driver, "f.casualties.killed", "15")
        submit(driver)
        a.run("bundle", "import", from_colleague)
        driver.get(url.split("/login")[0] + f"/incidents/{record}")
        check("Open conflicts on casualties.killed" in driver.page_source, "the incident does not show its conflict")
        driver.save_screenshot(os.path.join(args.screenshots, "incident.png"))

        # Review and resolve it with a note.
        link(driver, "Conflicts")
        check(driver.title.startswith("Conflicts"), f"title {driver.title!r}")
        page = driver.page_source
        check("Base value" in page and "Omar" in page and "Rima" in page, "the conflict page lacks the base value or the authors")
        driver.save_screenshot(os.path.join(args.screenshots, "conflict-review.png"))
        axe_check(driver, "conflicts")
        driver.find_element(By.CSS_SELECTOR, "input[type=radio][name='pick.casualties.killed'][value=new]").click()
        fill(driver, "value.casualties.killed", "15")
        fill(driver, "note", "Hospital list names 15; the 16th was counted twice")
        submit(driver, f"form[action$='/conflicts/{record}'] button[type=submit]")
        check("Resolved casualties.killed" in driver.page_source, "no confirmation of the resolution")
        check("No open conflicts" in driver.page_source, "the conflict is still listed")

        # The CLI sees the resolution, signed by this replica.
        shown = json.loads(a.run("show", record, "--history", "--json").stdout)
        last = shown["history"][-1]
        check(last.get("note") == "Hospital list names 15; the 16th was counted twice", f"the last revision's note: {last.get('note')}")
        check(last["node"] == node and last["signature"] == "verified", f"the resolution is {last['node']}, {last['signature']}")
        check(last["conflicts_resolved"] == ["casualties.killed"], f"it resolved {last['conflicts_resolved']}")
        check(shown["conflicts"] == [] and shown["fields"]["casualties"]["killed"] == 15, "the record is not resolved to 15")

        # A title that is a script stays text.
        a.run("add", "--title", "<script>alert(1)</script>", "--occurred", "2025-03-09", "--governorate", "Tartus")
        a.run("add", "--title", "Looting of shops", "--occurred", "2025-03-08", "--governorate", "Tartus")
        for day, governorate, violation in [
            ("2025-03-06", "Latakia", "killing"), ("2025-03-07", "Latakia", "summary-execution"), ("2025-03-07", "Tartus", "looting"),
            ("2025-03-08", "Hama", "arbitrary-detention"), ("2025-03-08", "Latakia", "killing"), ("2025-03-10", "Hama", "destruction-of-property"),
            ("2025-03-11", "Tartus", "displacement"), ("2025-03-12", "Latakia", "killing"), ("2025-03-12", "Hama", "looting"),
        ]:
            a.run("add", "--title", f"{violation} in {governorate}", "--occurred", day, "--governorate", governorate,
                  "--set", f"violations+={violation}")
        driver.get(url.split("/login")[0] + "/incidents")
        try:
            driver.switch_to.alert
            fail("a title ran as a script")
        except NoAlertPresentException:
            pass
        check("<script>alert(1)</script>" in driver.find_element(By.TAG_NAME, "table").text, "the script title is not shown as text")
        driver.save_screenshot(os.path.join(args.screenshots, "list.png"))

        link(driver, "Timeline")
        check(driver.find_elements(By.CSS_SELECTOR, "svg[role=img] rect"), "the chart has no bars")
        driver.save_screenshot(os.path.join(args.screenshots, "chart.png"))

        # Accessibility of every page.
        base = url.split("/login")[0]
        counted = {}
        for path in ["/incidents", "/incidents/new", f"/incidents/{record}", f"/incidents/{record}/edit", "/conflicts", "/chart", "/sync", "/status"]:
            driver.get(base + path)
            counted[path] = axe_check(driver, path)
        # The keyboard reaches the navigation first (after the skip link), with a visible focus.
        driver.get(base + "/incidents")
        driver.find_element(By.TAG_NAME, "body").send_keys("\t")
        focused = driver.switch_to.active_element
        check(focused.text == "Skip to content", f"the first Tab stop is {focused.text!r}")
        outline = driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle", focused)
        check(outline not in ("none", ""), "the focused link has no visible outline")
        print(json.dumps({"record": record, "axe_minor_or_moderate": counted}))
    finally:
        driver.quit()
        console.terminate()
        try:
            console.wait(timeout=10)
        except subprocess.TimeoutExpired:
            console.kill()
    check(console.returncode == 0, f"the console exited {console.returncode} on SIGTERM")


if __name__ == "__main__":
    main()
