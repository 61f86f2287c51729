// The sign-in page and the expired-link page. A browser that does hold a session can still
// land here: a login opened through a forwarding page (see dashboard/opener.py) is a
// cross-site redirect chain, on which browsers withhold SameSite=Strict cookies. A navigation
// started by this page is same-site, so the cookie goes along; try it once.
"use strict";
fetch("/localgate/session", {credentials: "same-origin"})
  .then((r) => r.json())
  .then((s) => {
    if (s.session && !sessionStorage.getItem("localgate-gate-retried")) {
      sessionStorage.setItem("localgate-gate-retried", "1");
      location.replace("/");
    }
  })
  .catch(() => {});
