#!/usr/bin/env python3
"""The web console in a real headless browser (Debian's chromium and chromedriver, selenium from PyPI).

Run by Tests/EndToEndTests/ConsoleBrowserTests.swift against a real outlawd and the Metrc sandbox, one phase at a
time (the Swift side sends batches from a handheld between phases and checks the sandbox's write log):

    console_browser.py PHASE '{"url": "https://127.0.0.1:PORT", "shots": "docs/console", ...}'

Prints one JSON line last: {"failures": [...], "notes": {...}}. Nothing here reaches outside this machine:
selenium gets chromedriver's path (no Selenium Manager) and SE_AVOID_STATS=true.
"""
import base64
import json
import os
import sys

os.environ["SE_AVOID_STATS"] = "true"

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402

COOKIE = "__Host-outlaw"


class Console:
    def __init__(self, args):
        self.url = args["url"].rstrip("/")
        self.shots = args.get("shots") or ""
        self.args = args
        self.failures = []
        self.notes = {}
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1024,1100", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-default-apps"):
            options.add_argument(flag)
        # The test daemon's certificate is self-signed.
        options.accept_insecure_certs = True
        self.driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(30)

    # -- helpers

    def check(self, condition, what):
        if not condition:
            self.failures.append(what)
        return condition

    def go(self, path):
        self.driver.get(self.url + path)
        self.loaded()

    def loaded(self):
        """Waits until the page in the window has finished loading: reading a page still being replaced fails with
        "Node with given id does not belong to the document" on a loaded machine."""
        WebDriverWait(self.driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def text(self):
        return self.again(lambda: self.driver.find_element(By.TAG_NAME, "body").text)

    def sentence(self, element_id):
        def read():
            found = self.driver.find_elements(By.ID, element_id)
            return found[0].text if found else ""
        return self.again(read)

    def shot(self, name):
        if self.shots:
            os.makedirs(self.shots, exist_ok=True)
            # The whole page, not only the window: Chrome's own capture beyond the viewport.
            def capture():
                metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
                size = metrics.get("cssContentSize") or metrics["contentSize"]
                width, height = 1024, min(int(size["height"]) + 16, 2400)
                return self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
            shot = self.again(capture)
            with open(os.path.join(self.shots, name + ".png"), "wb") as f:
                f.write(base64.b64decode(shot["data"]))

    def again(self, action):
        """Runs `action`, again (up to three times) when Chrome's inspector lost a node it had just handed out
        ("Node with given id does not belong to the document", seen on a loaded machine); every action given here
        is safe to repeat: reading the page, a screenshot, finding, clearing and typing into a field, finding a
        button before it is clicked."""
        for attempt in range(3):
            try:
                return action()
            except WebDriverException as error:
                if attempt == 2 or "does not belong to the document" not in str(error):
                    raise
                self.loaded()

    def fill(self, element_id, value):
        def typed():
            field = self.driver.find_element(By.ID, element_id)
            field.clear()
            field.send_keys(value)
        self.again(typed)

    def click(self, element_id):
        """Clicks a form's button and waits for the answer's page (the old page gone)."""
        page, button = self.again(lambda: (self.driver.find_element(By.TAG_NAME, "html"), self.driver.find_element(By.ID, element_id)))
        button.click()
        WebDriverWait(self.driver, 60).until(lambda _: self.gone(page))
        self.loaded()

    @staticmethod
    def gone(element):
        """Whether `element`'s page has been replaced. Selenium's `staleness_of` only knows StaleElementReference;
        Chrome (since 134) may answer "Node with given id does not belong to the document" for the same thing
        (SeleniumHQ/selenium#15401), which made a click fail although its answer had arrived."""
        try:
            element.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise

    def sign_in(self, user, pin):
        self.driver.delete_all_cookies()
        self.go("/signin")
        self.fill("user", user)
        self.fill("pin", pin)
        self.click("signin")

    def sign_out(self):
        if self.again(lambda: self.driver.find_elements(By.ID, "signout")):
            self.click("signout")

    def quit(self):
        self.driver.quit()

    # -- phases

    def jane(self):
        """jane (Console) signs in and pastes her own key; Metrc accepts it."""
        self.go("/signin")
        self.shot("01-sign-in")
        self.sign_in("jane", self.args["janePIN"])
        self.check(self.driver.current_url.endswith("/settings"), f"jane lands on Settings, not {self.driver.current_url}")
        self.fill("key", self.args["janeKey"])
        self.click("setkey")
        notice = self.sentence("notice")
        self.notes["janeNotice"] = notice
        self.check("Metrc accepted your key" in notice, f"Settings says Metrc accepted jane's key: {notice!r} / {self.text()[:400]!r}")
        self.check(self.args["janeKey"] not in self.driver.page_source, "the page shows jane's key")
        self.shot("02-settings")
        self.sign_out()
        self.check("/signin" in self.driver.current_url, "signing out leads to the sign-in page")

    def admin(self):
        """An admin sets john's key from Users; Keys and Status show."""
        self.sign_in("admin", self.args["adminPIN"])
        self.go("/users")
        self.fill("key-john", self.args["johnKey"])
        self.click("setkey-john")
        notice = self.sentence("notice")
        self.notes["johnNotice"] = notice
        self.check("Metrc accepted the key for john" in notice, f"Users says Metrc accepted john's key: {notice!r} / {self.text()[:400]!r}")
        self.check(self.args["johnKey"] not in self.driver.page_source, "the page shows john's key")
        self.shot("03-users")
        self.go("/keys")
        self.check("john" in self.text() and "…" + self.args["johnKey"][-4:] in self.text(), "Keys lists john's key by its last 4")
        self.check(self.args["johnKey"] not in self.driver.page_source, "Keys shows a key")
        self.shot("04-keys")
        self.go("/status")
        self.check("Health" in self.text() and "Waiting" in self.text(), f"Status shows the health and the queue: {self.text()[:300]!r}")
        self.check(self.driver.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]") != [], "Status refreshes itself")
        self.shot("07-status")

    def roles(self):
        """A User-role person gets 403 on Settings and Users; a Console person cannot set another's key; a form
        without its token and a tampered session cookie are refused."""
        self.sign_in("john", self.args["johnPIN"])
        self.check(self.driver.current_url.endswith("/status"), f"john (User) lands on Status, not {self.driver.current_url}")
        for page in ("/settings", "/users"):
            self.go(page)
            self.check("cannot use this page" in self.text(), f"john gets the 403 page on {page}: {self.text()[:300]!r}")
        self.shot("08-not-for-your-role")
        self.sign_out()

        self.sign_in("jane", self.args["janePIN"])
        self.go("/settings")
        # Jane's own key form, pointed at another person's key: the server refuses it (the pages offer no such form).
        self.driver.execute_script("""
            const form = document.querySelector('form[action="/settings/key"]');
            form.action = '/users/key';
            const who = document.createElement('input'); who.type = 'hidden'; who.name = 'user'; who.value = 'john';
            form.appendChild(who);""")
        self.fill("key", "jane-sets-johns-key-0000")
        self.click("setkey")
        problem = self.sentence("problem")
        self.notes["janeForJohn"] = problem
        self.check("only your own key" in problem, f"jane cannot set john's key: {problem!r} / {self.text()[:300]!r}")

        self.go("/settings")
        self.driver.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove());")
        self.fill("key", self.args["janeKey"])
        self.click("setkey")
        problem = self.sentence("problem")
        self.notes["noToken"] = problem
        self.check("form token" in problem, f"a form without its token is refused: {problem!r}")

        self.go("/settings")
        cookie = self.driver.get_cookie(COOKIE)
        self.check(cookie is not None and cookie.get("secure") and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict",
                   f"the session cookie is Secure, HttpOnly, SameSite=Strict: {cookie}")
        if cookie:
            value = cookie["value"]
            tampered = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
            self.driver.delete_cookie(COOKIE)
            self.driver.add_cookie({"name": COOKIE, "value": tampered, "path": "/", "secure": True, "httpOnly": True, "sameSite": "Strict"})
            self.go("/settings")
            problem = self.sentence("problem")
            self.notes["tampered"] = problem
            self.check("cookie is not valid" in problem and self.driver.find_elements(By.ID, "signin") != [],
                       f"a tampered cookie is refused: {problem!r}")

    def lock(self):
        """Five wrong PINs lock the name, as on a handheld; the right PIN is refused then."""
        answers = []
        for attempt in range(5):
            self.sign_in("lockme", f"99{attempt:02d}")
            answers.append(self.sentence("problem"))
        self.sign_in("lockme", self.args["lockmePIN"])
        answers.append(self.sentence("problem"))
        self.notes["lock"] = answers
        self.check(all("Wrong user name or PIN" in a for a in answers[:5]), f"wrong PINs are refused: {answers}")
        self.check("locked" in answers[4], f"the fifth wrong PIN locks the name: {answers[4]!r}")
        self.check("locked" in answers[5], f"the right PIN is refused while the name is locked: {answers[5]!r}")

    def work(self):
        """Review: reject one event with a reason, approve the rest of the batch; Failed: replay."""
        device, review, failed = self.args["device"], self.args["reviewBatch"], self.args["failedBatch"]
        self.sign_in("admin", self.args["adminPIN"])
        self.go("/review")
        self.shot("05-review")
        self.fill(f"reason-{device}-{review}-1", "wrong plant: tag misread")
        self.click(f"reject-{device}-{review}-1")
        notice = self.sentence("notice")
        self.notes["rejected"] = notice
        self.check("rejected" in notice, f"Review says the event was rejected: {notice!r} / {self.text()[:300]!r}")
        self.click(f"approve-{device}-{review}")
        notice = self.sentence("notice")
        self.notes["approved"] = notice
        self.check("approved" in notice, f"Review says the batch was approved: {notice!r}")
        self.go("/failed")
        self.check("create the missing location" in self.text(), f"Failed shows outlawctl's fix hint: {self.text()[:500]!r}")
        self.shot("06-failed")
        self.click(f"replay-{device}-{failed}")
        notice = self.sentence("notice")
        self.notes["replayed"] = notice
        self.check("requeued" in notice, f"Failed says the batch was requeued: {notice!r}")


def main():
    phase, args = sys.argv[1], json.loads(sys.argv[2])
    console = None
    try:
        console = Console(args)
        getattr(console, phase)()
        result = {"failures": console.failures, "notes": console.notes}
    except Exception as error:  # a crash is a failure with its reason, not a silent pass
        first = (str(error).strip().splitlines() or [""])[0]
        result = {"failures": [f"{type(error).__name__}: {first}"] + (console.failures if console else []),
                  "notes": console.notes if console else {}}
    finally:
        if console:
            console.quit()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
