/* The help widget: one <script src=".../widget.js" async> on any page of any shop.
 *
 * Everything lives in an open shadow root on <div id="kb-widget-host">, styled only by widget.css from our
 * origin (no inline styles or <style>: the shop's CSP may forbid them), so neither the shop's CSS nor ours
 * crosses the boundary. Until the visitor (or the shop, through KB()) opens it, the widget is a launcher
 * button and makes no request to the API. Requests carry no cookies: the visitor's session travels in the
 * X-KB-Session header and sessionStorage. Plain ES2017, no dependencies; nothing here throws into the page.
 */
(function () {
  "use strict";

  const script = document.currentScript ||
    [].slice.call(document.querySelectorAll("script[src]")).reverse().find((s) => /\/widget\.js(\?|#|$)/.test(s.src));
  if (!script || (window.KB && window.KB.kbWidget)) { return; }
  let ORIGIN;
  try { ORIGIN = new URL(script.src, location.href).origin; } catch (e) { return; }
  const LOCALE = script.getAttribute("data-kb-locale") || "";
  const OPEN_AT_ONCE = script.hasAttribute("data-kb-open");
  const API = ORIGIN + "/widget/api/";
  const KEY = "kb-widget-session";
  const REASONS = [  // until /start says otherwise
    { value: "not-answered", label: "It didn't answer my question" },
    { value: "unclear", label: "It was hard to understand" },
    { value: "outdated", label: "It's out of date or wrong" },
    { value: "missing-steps", label: "Steps or details are missing" },
    { value: "other", label: "Something else" },
  ];
  const ICONS = {
    help: ["M7.9 20A9 9 0 1 0 4 16.1L2 22Z", "M9.09 9a3 3 0 0 1 5.83 1c0 2-3 3-3 3", "M12 17h.01"],
    down: ["m6 9 6 6 6-6"],
    back: ["m15 18-6-6 6-6"],
    close: ["M18 6 6 18", "m6 6 12 12"],
    out: ["M15 3h6v6", "M10 14 21 3", "M18 13v6a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h6"],
  };

  let session = stored();
  let csrf = "";
  let start = null;        // /start's answer
  let starting = null;     // its promise
  let pendingIdentity = null;
  let identity = null;     // {name, email} the server accepted
  let suggestSlugs = [];
  let root = null, shadow = null, launcher = null, panel = null, body = null, alertBox = null, backButton = null,
    titleEl = null, homeList = null;
  let stack = [];          // the widget's own views, newest last: {name, node, focus, scroll}
  let isOpen = false;
  let uid = 0;
  let busy = 0;

  // ---------------------------------------------------------------- helpers

  function stored() { try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; } }
  function keep(value) { session = value; try { sessionStorage.setItem(KEY, value); } catch (e) { /* private mode */ } }
  function report(error) { try { console.error("[kb-widget]", error); } catch (e) { /* no console */ } }

  // A handler that never throws into the page: a failure is reported and shown in the panel.
  function guard(fn) {
    return function (event) {
      try {
        const result = fn.call(this, event);
        if (result && typeof result.catch === "function") { result.catch(failed); }
      } catch (error) { failed(error); }
    };
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach((key) => {
      const value = attrs[key];
      if (value == null || value === false) { return; }
      if (key === "text") { node.textContent = value; }
      else if (key === "on") { Object.keys(value).forEach((type) => node.addEventListener(type, guard(value[type]))); }
      else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach((child) => {
      if (child != null && child !== false) { node.appendChild(typeof child === "string" ? document.createTextNode(child) : child); }
    });
    return node;
  }

  function icon(name, cls) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (cls) { svg.setAttribute("class", cls); }
    ICONS[name].forEach((d) => { const path = document.createElementNS(ns, "path"); path.setAttribute("d", d); svg.appendChild(path); });
    return svg;
  }

  function id(prefix) { uid += 1; return "kb-" + prefix + "-" + uid; }
  function absolute(url) { try { return new URL(url || "/", ORIGIN + "/").href; } catch (e) { return ORIGIN + "/"; } }
  function plainClick(event) { return !(event.button || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey); }

  // A link that opens in the widget on a plain click, and is a real link for a new tab or a copy.
  function link(url, text, open, attrs) {
    const a = el("a", Object.assign({ href: absolute(url), text: text }, attrs || {}));
    a.addEventListener("click", guard((event) => { if (plainClick(event)) { event.preventDefault(); return run(open); } }));
    return a;
  }

  // The slug of one of our articles at this address, or "".
  function ourSlug(href) {
    try {
      const url = new URL(href, ORIGIN + "/");
      const found = url.origin === ORIGIN && url.pathname.match(/^\/articles\/([^/]+)\/?$/);
      return found ? decodeURIComponent(found[1]) : "";
    } catch (e) { return ""; }
  }

  function hashOf(href) { try { return decodeURIComponent(new URL(href, ORIGIN + "/").hash.slice(1)); } catch (e) { return ""; } }

  // ---------------------------------------------------------------- the API

  class Failure extends Error {
    constructor(status, body, retry) {
      const error = (body && body.error) || {};
      super(error.message || "HTTP " + status);
      this.status = status;
      this.code = error.code || (status ? "" : "network");
      this.fields = error.fields || null;
      this.rendered = error.rendered || null;
      this.retry = retry || error.retry_after || 0;
    }
  }

  async function request(method, path, data, signal, again) {
    const headers = { "Accept": "application/json", "X-KB-Page": location.href };
    if (session) { headers["X-KB-Session"] = session; }
    if (method === "POST") { headers["Content-Type"] = "application/json"; headers["X-CSRFToken"] = csrf; }
    let response;
    try {
      response = await fetch(API + path, { method: method, headers: headers, body: data ? JSON.stringify(data) : undefined,
        credentials: "omit", mode: "cors", signal: signal });
    } catch (error) {
      if (error && error.name === "AbortError") { throw error; }
      throw new Failure(0, null);
    }
    const token = response.headers.get("X-KB-Session");
    if (token) { keep(token); }
    let answer = null;
    try { answer = await response.json(); } catch (e) { /* an empty or HTML body */ }
    if (response.ok) { return answer || {}; }
    const failure = new Failure(response.status, answer, parseInt(response.headers.get("Retry-After"), 10));
    if (failure.code === "csrf" && !again && path.indexOf("start") !== 0) {
      await begin(true);  // the session expired: a new token, then once more
      return request(method, path, data, signal, true);
    }
    throw failure;
  }

  function firstHeading() {
    const h1 = document.querySelector("h1");
    return h1 ? h1.textContent.replace(/\s+/g, " ").trim().slice(0, 200) : "";
  }

  // /start, once (again after a CSRF failure or KB('suggest')); the shop's identify goes right after it.
  function begin(force) {
    if (!starting || force) {
      const params = new URLSearchParams({ title: (document.title || "").slice(0, 200), h1: firstHeading() });
      if (suggestSlugs.length) { params.set("suggest", suggestSlugs.join(",")); }
      if (LOCALE) { params.set("locale", LOCALE); }
      // Never reached at all: the API refuses this site (CORS hides its 403 from us, by design) or is down.
      const unreachable = (error) => {
        if (!start && error instanceof Failure && error.code === "network") { error.code = "unreachable"; }
        throw error;
      };
      const promise = starting = request("GET", "start?" + params.toString()).catch(unreachable).then(async (data) => {
        start = data;
        csrf = data.csrf_token || "";
        if (data.identity && !identity) { identity = data.identity; }
        if (titleEl && data.shop && data.shop.name) { titleEl.textContent = data.shop.name + " help"; }
        if (pendingIdentity) {
          const who = pendingIdentity;
          pendingIdentity = null;
          await identify(who);
        }
        return data;
      });
      promise.catch(() => { if (starting === promise) { starting = null; } });
    }
    return starting;
  }

  function call(method, path, data, signal) { return begin().then(() => request(method, path, data, signal)); }

  async function identify(who) {
    try {
      const answer = await request("POST", "identify", { name: String(who.name || ""), email: String(who.email || ""),
        signature: String(who.signature || "") });
      identity = answer.identified ? { name: String(who.name || ""), email: String(who.email || "") } : null;
    } catch (error) { report(error); }
  }

  // ---------------------------------------------------------------- messages and progress

  function describe(error) {
    if (error.code === "origin") { return "Help isn't available on this site."; }
    if (error.code === "unreachable") { return "Help isn't available on this site right now."; }
    if (error.status === 429) {
      return error.retry ? "Too many requests, try again in " + error.retry + " second" + (error.retry === 1 ? "" : "s") + "."
        : "Too many requests, try again in a moment.";
    }
    if (error.status === 404) { return error.message || "We couldn't find that article."; }
    if (error.status === 400 && error.code && error.code !== "csrf" && error.message) { return error.message; }
    return "Something went wrong — try again.";
  }

  function clearAlert() { if (alertBox) { alertBox.textContent = ""; } }

  function failed(error, retry) {
    if (error && error.name === "AbortError") { return; }
    if (!(error instanceof Failure)) { report(error); }
    if (!alertBox) { return; }
    const failure = error instanceof Failure ? error : new Failure(-1, null);
    alertBox.textContent = "";
    alertBox.appendChild(el("p", { text: describe(failure) }));
    if (retry && failure.code !== "origin" && failure.status !== 404) {
      alertBox.appendChild(el("button", { type: "button", class: "kb-btn kb-btn-2 kb-btn-small", text: "Try again",
        on: { click: () => { clearAlert(); return retry(); } } }));
    }
  }

  function setBusy(delta) {
    busy = Math.max(0, busy + delta);
    if (panel) {
      panel.classList.toggle("kb-busy", busy > 0);
      if (busy > 0) { panel.setAttribute("aria-busy", "true"); } else { panel.removeAttribute("aria-busy"); }
    }
  }

  // Run a step the visitor asked for: progress shown, a failure shown with "Try again".
  function run(action) {
    setBusy(1);
    return Promise.resolve().then(action)
      .catch((error) => failed(error, () => run(action)))
      .then(() => setBusy(-1));
  }

  // ---------------------------------------------------------------- the launcher and the panel

  function mount() {
    if (root) { return; }
    const host = el("div", { id: "kb-widget-host" });
    shadow = host.attachShadow({ mode: "open" });
    root = el("div", { class: "kb", lang: LOCALE || null, hidden: true });
    const sheet = el("link", { rel: "stylesheet", href: ORIGIN + "/widget.css" });
    const reveal = () => { root.hidden = false; };  // unstyled, it would flash in the page's corner
    sheet.addEventListener("load", reveal);
    sheet.addEventListener("error", reveal);
    launcher = el("button", { type: "button", class: "kb-launcher", "data-kb": "launcher", "aria-expanded": "false",
      "aria-controls": "kb-panel", on: { click: () => (isOpen ? close() : open()) } },
    [icon("help", "kb-when-closed"), icon("down", "kb-when-open"), el("span", { text: "Help" })]);
    root.appendChild(launcher);
    root.addEventListener("keydown", guard(keys));
    shadow.appendChild(sheet);
    shadow.appendChild(root);
    document.body.appendChild(host);
  }

  function build() {
    if (panel) { return; }
    backButton = el("button", { type: "button", class: "kb-icon", "aria-label": "Back", hidden: true, on: { click: back } },
      [icon("back")]);
    titleEl = el("h2", { id: "kb-title", class: "kb-title", text: start && start.shop && start.shop.name ? start.shop.name + " help" : "Help" });
    const closer = el("button", { type: "button", class: "kb-icon", "aria-label": "Close help", on: { click: () => close() } },
      [icon("close")]);
    alertBox = el("div", { class: "kb-alert", role: "alert" });
    body = el("div", { class: "kb-body" });
    panel = el("div", { id: "kb-panel", class: "kb-panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "kb-title",
      hidden: true }, [el("div", { class: "kb-head" }, [backButton, titleEl, closer]), alertBox, body]);
    root.insertBefore(panel, launcher);
  }

  function open() {
    mount();
    build();
    if (!isOpen) {
      isOpen = true;
      panel.hidden = false;
      root.classList.add("kb-is-open");
      launcher.setAttribute("aria-expanded", "true");
      if (stack.length) { restoreFocus(stack[stack.length - 1]); }
    }
    if (!stack.length) { show("home", homeView()); }
  }

  function close() {
    if (!isOpen) { return; }
    const view = stack[stack.length - 1];
    const inside = shadow.activeElement && panel.contains(shadow.activeElement);
    if (view) { view.focus = shadow.activeElement; view.scroll = body.scrollTop; }
    isOpen = false;
    panel.hidden = true;
    root.classList.remove("kb-is-open");
    launcher.setAttribute("aria-expanded", "false");
    if (inside || !document.activeElement || document.activeElement === document.body) { launcher.focus(); }
  }

  function focusables() {
    return [].slice.call(panel.querySelectorAll("a[href], button, input, select, textarea, [tabindex]"))
      .filter((node) => !node.disabled && node.tabIndex >= 0 && node.getClientRects().length);
  }

  // Escape closes (the suggestions list takes it first); Tab and Shift+Tab stay inside the open panel.
  function keys(event) {
    if (!isOpen) { return; }
    if (event.key === "Escape") { event.preventDefault(); close(); return; }
    if (event.key !== "Tab") { return; }
    const all = focusables();
    if (!all.length) { return; }
    const active = shadow.activeElement;
    const first = all[0], last = all[all.length - 1];
    if (event.shiftKey && (active === first || !panel.contains(active))) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && (active === last || !panel.contains(active))) { event.preventDefault(); first.focus(); }
  }

  // ---------------------------------------------------------------- the view history

  function headingOf(node) { return node.querySelector(".kb-h"); }

  function show(name, node, target, replace) {
    const current = stack[stack.length - 1];
    if (current) { current.focus = shadow.activeElement; current.scroll = body.scrollTop; current.node.remove(); }
    if (replace) { stack.pop(); }
    stack.push({ name: name, node: node });
    body.appendChild(node);
    body.scrollTop = 0;
    backButton.hidden = stack.length < 2;
    clearAlert();
    (target || (name === "home" ? node.querySelector("input") : headingOf(node))).focus();
  }

  function restoreFocus(view) {
    body.scrollTop = view.scroll || 0;
    const saved = view.focus;  // in the view or the header (Back), if it is still there to take the focus
    const usable = saved && panel.contains(saved) && saved.getClientRects().length;
    (usable ? saved : headingOf(view.node)).focus({ preventScroll: true });
  }

  function back() {
    if (stack.length < 2) { return; }
    stack.pop().node.remove();
    const view = stack[stack.length - 1];
    body.appendChild(view.node);
    backButton.hidden = stack.length < 2;
    clearAlert();
    restoreFocus(view);
  }

  function goHome() {
    while (stack.length > 1) { stack.pop().node.remove(); }
    if (stack.length) { body.appendChild(stack[0].node); }
    backButton.hidden = true;
    clearAlert();
    if (stack.length) { body.scrollTop = 0; stack[0].node.querySelector("input").focus(); }
  }

  function view(name, title, children, attrs) {
    const heading = id("h");
    return el(name === "article" ? "article" : "section", Object.assign({ class: "kb-view kb-view-" + name,
      "aria-labelledby": heading }, attrs || {}), [el("h3", { id: heading, class: "kb-h", tabindex: "-1", text: title })].concat(children));
  }

  function stillNeedHelp(slug) {
    return el("div", { class: "kb-more" }, [
      el("p", { class: "kb-more-title", text: "Still need help?" }),
      el("button", { type: "button", class: "kb-btn kb-btn-2", "data-kb": "contact", text: "Contact us",
        on: { click: () => run(() => contact(slug)) } }),
    ]);
  }

  // ---------------------------------------------------------------- search

  function searchForm(value) {
    const input = el("input", { id: id("q"), type: "search", "data-kb": "search", role: "combobox", "aria-autocomplete": "list",
      "aria-expanded": "false", autocomplete: "off", autocapitalize: "off", spellcheck: "false", enterkeyhint: "search",
      maxlength: "200", placeholder: "Type your question" });
    input.value = value || "";
    const list = el("ul", { id: input.id + "-list", role: "listbox", class: "kb-options", "aria-label": "Suggestions", hidden: true });
    input.setAttribute("aria-controls", list.id);
    const form = el("form", { role: "search", "aria-label": "Help articles", class: "kb-search", on: { submit: (event) => {
      event.preventDefault();
      const query = input.value.trim();
      if (query) { return run(() => results(query)); }
    } } }, [
      el("label", { for: input.id, class: "kb-vh", text: "Search our help articles" }),
      el("div", { class: "kb-combo" }, [input, list]),
      el("button", { type: "submit", class: "kb-btn", text: "Search" }),
    ]);
    combobox(input, list);
    return form;
  }

  // Instant suggestions: an ARIA 1.2 combobox, as on the help centre's own pages.
  function combobox(input, list) {
    let items = [], active = -1, timer = null, controller = null;

    function hide() {
      list.hidden = true;
      list.textContent = "";
      items = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      items.forEach((item, i) => item.node.setAttribute("aria-selected", i === index ? "true" : "false"));
      active = index;
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", items[index].node.id);
        items[index].node.scrollIntoView({ block: "nearest" });
      } else { input.removeAttribute("aria-activedescendant"); }
    }

    function choose(item) { hide(); return run(item.go); }

    function render(data, query) {
      const rows = [];
      if (data.answer) {
        const answer = data.answer;
        rows.push({ title: answer.text, note: "Answer from " + answer.title, cls: "kb-option-answer",
          go: () => article(answer.slug, "search", answer.anchor) });
      }
      (data.hits || []).forEach((hit) => rows.push({ title: hit.title, note: hit.section || "",
        go: () => article(hit.slug, "search", hashOf(hit.url)) }));
      if (rows.length) {
        rows.push({ title: data.total > 1 ? "See all " + data.total + " results for “" + query + "”" : "See the results for “" + query + "”",
          cls: "kb-option-all", go: () => results(query) });
      }
      list.textContent = "";
      items = rows.map((row, i) => {
        const node = el("li", { id: list.id + "-" + i, role: "option", "aria-selected": "false", class: row.cls },
          [row.title, row.note ? el("small", { text: row.note }) : null]);
        node.addEventListener("mousedown", (event) => event.preventDefault());  // keep the focus in the box
        node.addEventListener("click", guard(() => choose(row)));
        list.appendChild(node);
        row.node = node;
        return row;
      });
      active = -1;
      if (items.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } else { hide(); }
    }

    function suggest() {
      const query = input.value.trim();
      if (query.length < 2) { hide(); return; }
      if (controller) { controller.abort(); }
      controller = new AbortController();
      call("GET", "search?" + new URLSearchParams({ q: query, limit: "6", instant: "1" }).toString(), null, controller.signal)
        .then((data) => { if (input.value.trim() === query && input.isConnected) { render(data, query); } })
        .catch((error) => { if (error && error.code !== "invalid") { failed(error); } });
    }

    input.addEventListener("input", guard(() => { clearTimeout(timer); timer = setTimeout(guard(suggest), 200); }));
    input.addEventListener("keydown", guard((event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (list.hidden) { suggest(); return; }
        highlight(items.length ? (active + 1) % items.length : -1);
      } else if (event.key === "ArrowUp") {
        if (list.hidden) { return; }
        event.preventDefault();
        highlight(active <= 0 ? items.length - 1 : active - 1);
      } else if (event.key === "Enter") {
        if (!list.hidden && active >= 0) { event.preventDefault(); return choose(items[active]); }
        clearTimeout(timer);
        if (controller) { controller.abort(); }
        hide();
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        event.stopPropagation();  // close the list, not the panel
        hide();
      }
    }));
    input.addEventListener("blur", () => setTimeout(hide, 150));
  }

  function card(item, from, extra) {
    const a = link(item.url, item.title, () => article(item.slug, from, hashOf(item.url)), { class: "kb-card-link" });
    const text = item.snippet || item.summary;
    return el("li", Object.assign({ class: "kb-card" }, extra || {}), [a,
      item.section ? el("small", { text: item.section }) : null, text ? el("p", { text: text }) : null]);
  }

  function answerBox(answer, open, attrs) {
    return el("div", Object.assign({ class: "kb-answer" }, attrs || {}), [
      el("p", { class: "kb-label", text: "Answer" }),
      el("blockquote", { class: "kb-answer-text", cite: absolute(answer.url), text: answer.text }),
      el("p", { class: "kb-source" }, ["From ",
        link(answer.url, answer.title + (answer.section ? " › " + answer.section : ""), open, { class: "kb-stretch" })]),
    ]);
  }

  async function results(query) {
    const data = await call("GET", "search?" + new URLSearchParams({ q: query, limit: "10" }).toString());
    const shown = data.query || query;
    const children = [searchForm(shown)];
    if (data.suggestion) {
      children.push(el("p", { class: "kb-did-you-mean" }, ["Did you mean ",
        el("button", { type: "button", class: "kb-link-button", text: data.suggestion, on: { click: () => run(() => results(data.suggestion)) } }),
        "?"]));
    }
    if (data.answer) {
      const answer = data.answer;
      children.push(answerBox(answer, () => article(answer.slug, "search", answer.anchor), { "data-kb": "answer" }));
    }
    const hits = data.hits || [];
    if (hits.length) {
      children.push(el("p", { class: "kb-muted", text: (data.total || hits.length) + " article" + ((data.total || hits.length) === 1 ? "" : "s") + " found" }));
      children.push(el("ul", { class: "kb-list" }, hits.map((hit) => card(hit, "search", { "data-kb": "result" }))));
    } else {
      children.push(el("p", { class: "kb-none", text: "No exact match for “" + shown + "”." }));
      if ((data.nearest || []).length) {
        children.push(el("h4", { class: "kb-h4", text: "These might help" }));
        children.push(el("ul", { class: "kb-list" }, data.nearest.map((hit) => card(hit, "search", { "data-kb": "result" }))));
      }
    }
    children.push(stillNeedHelp(null));
    show("results", view("results", "Results for “" + shown + "”", children));
  }

  // ---------------------------------------------------------------- home

  function homeView() {
    homeList = el("div", { class: "kb-suggested", "aria-busy": "true" }, [el("p", { class: "kb-muted", text: "Loading…" })]);
    const node = view("home", "How can we help?", [searchForm(""), homeList, stillNeedHelp(null)]);
    fillHome();
    return node;
  }

  function fillHome() {
    const target = homeList;
    return run(() => begin().then((data) => {
      const articles = data.suggestions || [];
      const heading = { popular: "Popular articles", asked: "Suggested for you" }[data.suggested_by] || "Suggested for this page";
      target.textContent = "";
      target.removeAttribute("aria-busy");
      if (articles.length) {
        target.appendChild(el("h4", { class: "kb-h4", text: heading }));
        target.appendChild(el("ul", { class: "kb-list" }, articles.map((a) => card(a, "suggested"))));
      }
    }, (error) => { target.textContent = ""; target.removeAttribute("aria-busy"); throw error; }));
  }

  // ---------------------------------------------------------------- articles

  // The server sanitised the article; this is a second line: scripts, frames, forms, styles, handlers and
  // script URLs go, relative addresses become ours, headings sit below the panel's own.
  function clean(html, base) {
    const doc = new DOMParser().parseFromString(html || "", "text/html");  // inert: nothing runs or loads
    doc.body.querySelectorAll("script,style,link,meta,base,iframe,frame,object,embed,form,noscript,template,animate,set")
      .forEach((node) => node.remove());
    doc.body.querySelectorAll("*").forEach((node) => {
      [].slice.call(node.attributes).forEach((attr) => {
        const name = attr.name.toLowerCase();
        const value = attr.value.replace(/[\u0000-\u0020]/g, "");
        if (/^on|^(style|srcdoc|srcset|formaction|action)$/.test(name)) { node.removeAttribute(attr.name); }
        else if (/^(href|src|xlink:href|poster|cite|background)$/.test(name)) {
          if (/^(javascript|vbscript|data):/i.test(value) && !(name === "src" && /^data:image\//i.test(value))) {
            node.removeAttribute(attr.name);
          } else if (value.charAt(0) !== "#") {
            try { node.setAttribute(attr.name, new URL(attr.value, base).href); } catch (e) { node.removeAttribute(attr.name); }
          }
        }
      });
      if (node.localName === "a" && node.hasAttribute("href") && node.getAttribute("href").charAt(0) !== "#" && !ourSlug(node.href)) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
    doc.body.querySelectorAll("h1,h2,h3,h4,h5").forEach((heading) => {
      const level = Math.min(6, Number(heading.localName.charAt(1)) + 2);
      const lower = doc.createElement("h" + level);
      [].slice.call(heading.attributes).forEach((attr) => lower.setAttribute(attr.name, attr.value));
      while (heading.firstChild) { lower.appendChild(heading.firstChild); }
      heading.replaceWith(lower);
    });
    const fragment = document.createDocumentFragment();
    [].slice.call(doc.body.childNodes).forEach((node) => fragment.appendChild(document.adoptNode(node)));
    return fragment;
  }

  function formatDate(iso) {
    try {
      return new Date(iso.length === 10 ? iso + "T00:00:00Z" : iso).toLocaleDateString(LOCALE || undefined,
        { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
    } catch (e) { return iso; }
  }

  function jump(anchor) {
    const target = anchor && shadow.getElementById(anchor);
    if (!target) { return false; }
    target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
    scrollToTop(target);
    return true;
  }

  // Bring a node to the top of the panel's body (the body alone: the header stays).
  function scrollToTop(node) { body.scrollTop += node.getBoundingClientRect().top - body.getBoundingClientRect().top - 12; }

  async function article(slug, from, anchor) {
    const data = await call("GET", "articles/" + encodeURIComponent(slug) + "?from=" + encodeURIComponent(from || "search"));
    const base = absolute(data.url || "/articles/" + encodeURIComponent(slug));
    const prose = el("div", { class: "kb-prose" });
    prose.appendChild(clean(data.html, base));
    prose.addEventListener("click", guard((event) => {
      const a = event.target.closest && event.target.closest("a[href]");
      if (!a || !plainClick(event)) { return; }
      const href = a.getAttribute("href");
      if (href.charAt(0) === "#") { event.preventDefault(); jump(decodeURIComponent(href.slice(1))); return; }
      const other = ourSlug(a.href);
      if (other) { event.preventDefault(); return run(() => article(other, "link", hashOf(a.href))); }
    }));
    const meta = [data.updated ? "Updated " + formatDate(data.updated) : "", data.reading_minutes ? data.reading_minutes + " min read" : ""]
      .filter(Boolean).join(" · ");
    const node = view("article", data.title || slug, [
      meta ? el("p", { class: "kb-muted kb-meta", text: meta }) : null,
      prose,
      el("p", { class: "kb-open-site" }, [el("a", { href: base, target: "_blank", rel: "noopener" },
        ["Open in the help centre", el("span", { class: "kb-vh", text: " (opens in a new tab)" }), icon("out")])]),
      feedback(slug, data),
      stillNeedHelp(slug),
    ], { "data-kb": "article" });
    show("article", node);
    jump(anchor);
  }

  // "Was this article helpful?": Yes, or No and then what was wrong, in place, as on the help centre.
  function feedback(slug, data) {
    const titleId = id("fb");
    const status = el("p", { class: "kb-status", role: "status", tabindex: "-1" });
    const yes = el("button", { type: "button", class: "kb-btn kb-btn-2", "data-kb": "helpful-yes", "aria-pressed": "false", text: "Yes" });
    const no = el("button", { type: "button", class: "kb-btn kb-btn-2", "data-kb": "helpful-no", "aria-pressed": "false", text: "No" });
    const question = el("div", { class: "kb-vote" }, [el("h4", { id: titleId, class: "kb-h4", text: "Was this article helpful?" }),
      el("div", { class: "kb-row" }, [yes, no])]);
    const group = id("reason");
    const comment = el("textarea", { id: id("comment"), rows: "3", maxlength: "1000" });
    const choices = ((start && start.reasons) || REASONS).map((reason) => el("label", { class: "kb-choice" },
      [el("input", { type: "radio", name: group, value: reason.value }), el("span", { text: reason.label })]));
    const reasons = el("form", { class: "kb-reasons", hidden: true }, [
      el("fieldset", {}, [el("legend", { text: "What was wrong?" })].concat(choices)),
      el("label", { for: comment.id }, ["Anything else we should know? ", el("span", { class: "kb-hint-inline", text: "(optional)" })]),
      comment,
      el("button", { type: "submit", class: "kb-btn", text: "Send" }),
    ]);
    const tally = data.tally && data.tally.votes ? el("p", { class: "kb-muted kb-tally",
      text: data.tally.yes + " of " + data.tally.votes + " found this helpful" }) : null;

    function pressed(helpful) {
      yes.setAttribute("aria-pressed", helpful === "yes" ? "true" : "false");
      no.setAttribute("aria-pressed", helpful === "no" ? "true" : "false");
    }
    function send(payload) { return call("POST", "articles/" + encodeURIComponent(slug) + "/feedback", payload); }

    yes.addEventListener("click", guard(() => run(async () => {
      const answer = await send({ helpful: "yes", reason: null, comment: null });
      pressed("yes");
      status.textContent = answer.message || "Thanks for your feedback.";
    })));
    no.addEventListener("click", guard(() => run(async () => {
      await send({ helpful: "no", reason: null, comment: null });
      pressed("no");
      status.textContent = "";
      question.hidden = true;
      reasons.hidden = false;
      reasons.querySelector("input").focus({ preventScroll: true });
      scrollToTop(section);
    })));
    reasons.addEventListener("submit", guard((event) => {
      event.preventDefault();
      return run(async () => {
        const checked = reasons.querySelector("input:checked");
        const answer = await send({ helpful: "no", reason: checked ? checked.value : null, comment: comment.value.trim() || null });
        reasons.hidden = true;
        question.hidden = false;
        status.textContent = answer.message || "Thanks for letting us know.";
        status.focus();
      });
    }));
    if (data.vote) {
      pressed(data.vote.helpful ? "yes" : "no");
      status.textContent = "You said this article " + (data.vote.helpful ? "helped" : "didn't help") + ". You can change your answer.";
    }
    const section = el("section", { class: "kb-feedback", "aria-labelledby": titleId }, [question, reasons, status, tally]);
    return section;
  }

  // ---------------------------------------------------------------- contact

  async function contact(from) {
    const data = await call("GET", "contact" + (from ? "?from=" + encodeURIComponent(from) : ""));
    show("contact", contactView(data, from));
  }

  function contactView(data, from) {
    const fields = {};
    let rendered = data.rendered || "";

    function field(name, label, input, hint) {
      input.id = id("f-" + name);
      input.name = name;
      const hintEl = hint ? el("p", { class: "kb-hint", id: input.id + "-hint", text: hint }) : null;
      const error = el("p", { class: "kb-error", id: input.id + "-error", hidden: true });
      if (hintEl) { input.setAttribute("aria-describedby", hintEl.id); }
      fields[name] = { input: input, error: error, hint: hintEl ? hintEl.id : "" };
      return el("div", { class: "kb-field" }, [el("label", { for: input.id, text: label }), hintEl, error, input]);
    }

    function setError(name, messages) {
      const f = fields[name];
      const bad = messages && messages.length;
      f.error.textContent = bad ? messages.join(" ") : "";
      f.error.hidden = !bad;
      if (bad) { f.input.setAttribute("aria-invalid", "true"); } else { f.input.removeAttribute("aria-invalid"); }
      const described = [f.hint, bad ? f.error.id : ""].filter(Boolean).join(" ");
      if (described) { f.input.setAttribute("aria-describedby", described); } else { f.input.removeAttribute("aria-describedby"); }
    }

    const topics = (start && start.topics) || [];
    const topic = el("select", { required: true }, [el("option", { value: "", text: "Choose a topic" })]
      .concat(topics.map((t) => el("option", { value: t.value, text: t.label }))));
    topic.value = topics.some((t) => t.value === data.topic) ? data.topic : "";
    const name = el("input", { type: "text", autocomplete: "name", maxlength: "100", required: true });
    const email = el("input", { type: "email", autocomplete: "email", maxlength: "254", required: true });
    name.value = data.name || (identity && identity.name) || "";
    email.value = data.email || (identity && identity.email) || "";
    const order = el("input", { type: "text", maxlength: "32", autocomplete: "off" });
    const subject = el("input", { type: "text", maxlength: "150", required: true });
    const message = el("textarea", { rows: "6", maxlength: "5000", required: true });
    const deflectList = el("ul", { class: "kb-list" });
    const deflectBox = el("section", { class: "kb-deflect", "aria-live": "polite", hidden: true },
      [el("h4", { class: "kb-h4", text: "These articles might answer your question" }), deflectList]);
    const sendButton = el("button", { type: "submit", class: "kb-btn kb-send", text: "Send my request" });
    // The question first, the suggestions right under it (in a narrow panel, further down they would be out of
    // sight while the customer types), then who they are.
    const form = el("form", { class: "kb-form", novalidate: true }, [
      field("subject", "Subject", subject),
      deflectBox,
      field("message", "How can we help?", message),
      field("name", "Your name", name),
      field("email", "Email address", email),
      field("topic", "Topic", topic),
      field("order_number", "Order number (optional)", order, start && start.order_example ? "For example " + start.order_example : ""),
      sendButton,
    ]);

    // Live deflection, as on the contact page: up to three articles for what the customer is typing.
    let timer = null, controller = null, lastQuery = "";
    function deflect() {
      const query = (subject.value.trim() + " " + message.value.trim().slice(0, 300)).trim();
      if (query.length < 4) { deflectBox.hidden = true; return; }
      if (controller) { controller.abort(); }
      controller = new AbortController();
      call("GET", "search?" + new URLSearchParams({ q: query, limit: "3", instant: "1" }).toString(), null, controller.signal)
        .then((found) => {
          lastQuery = subject.value.trim() || query;
          const opened = (slug, anchor) => Promise.all([  // recorded, but the article opens even if that fails
            call("POST", "contact/deflection", { slug: slug, q: lastQuery }).catch(report),
            article(slug, "contact", anchor),
          ]);
          deflectList.textContent = "";
          if (found.answer) {
            const answer = found.answer;
            deflectList.appendChild(el("li", {}, [answerBox(answer, () => opened(answer.slug, answer.anchor))]));
          }
          (found.hits || []).forEach((hit) => {
            const a = link(hit.url, hit.title, () => opened(hit.slug, hashOf(hit.url)), { class: "kb-card-link" });
            deflectList.appendChild(el("li", { class: "kb-card" }, [a, hit.summary ? el("p", { text: hit.summary }) : null]));
          });
          deflectBox.hidden = !deflectList.children.length;
        })
        .catch((error) => { if (error && error.code !== "invalid") { failed(error); } });
    }
    [subject, message].forEach((input) => input.addEventListener("input", guard(() => {
      clearTimeout(timer);
      timer = setTimeout(guard(deflect), 400);
    })));

    form.addEventListener("submit", guard((event) => {
      event.preventDefault();
      if (sendButton.disabled) { return; }
      sendButton.disabled = true;
      return run(async () => {
        try {
          const answer = await call("POST", "contact", { name: name.value.trim(), email: email.value.trim(), topic: topic.value,
            order_number: order.value.trim(), subject: subject.value.trim(), message: message.value.trim(),
            rendered: rendered, source: data.source || "", confirm: "1" });
          show("sent", sentView(answer, email.value.trim()), null, true);
        } catch (error) {
          if (error.rendered) { rendered = error.rendered; }  // a stale or repeated form: send again
          if (!error.fields) { throw error; }
          Object.keys(fields).forEach((key) => setError(key, error.fields[key]));
          const others = Object.keys(error.fields).filter((key) => !fields[key]);
          if (others.length) { failed(new Failure(400, { error: { code: "invalid", message: others.map((k) => error.fields[k].join(" ")).join(" ") } })); }
          const first = Object.keys(fields).find((key) => error.fields[key]);
          if (first) { fields[first].input.focus(); }
        } finally {
          sendButton.disabled = false;
        }
      });
    }));

    return view("contact", "Contact us", [
      el("p", { class: "kb-lead", text: "Tell us what you need and we'll reply by email. We'll suggest a few articles as you type." }),
      form,
      supportWays(),
    ], { "data-from": from || null });
  }

  function supportWays() {
    const support = (start && start.support) || {};
    const ways = [];
    if (support.phone) { ways.push(["Call us", el("a", { href: "tel:" + support.phone.replace(/[^\d+]/g, ""), text: support.phone })]); }
    if (support.chat_url) { ways.push(["Live chat", el("a", { href: absolute(support.chat_url), target: "_blank", rel: "noopener", text: "Chat with us" })]); }
    if (support.email) { ways.push(["Email", el("a", { href: "mailto:" + support.email, text: support.email })]); }
    if (support.hours) { ways.push(["Opening hours", el("span", { text: support.hours })]); }
    if (!ways.length) { return null; }
    return el("section", { class: "kb-ways" }, [el("h4", { class: "kb-h4", text: "Other ways to reach us" }),
      el("dl", {}, [].concat.apply([], ways.map((way) => [el("dt", { text: way[0] }), el("dd", {}, [way[1]])])))]);
  }

  function sentView(answer, typed) {
    const address = answer.email || typed;
    const children = [];
    if (answer.reference) {
      children.push(el("p", {}, ["Your reference is ", el("strong", { class: "kb-ref", "data-kb": "reference", text: answer.reference }),
        ". Please quote it if you contact us again about this."]));
    }
    if (address) { children.push(el("p", {}, ["We'll reply to ", el("strong", { class: "kb-address", text: address }), "."])); }
    else if (answer.message) { children.push(el("p", { text: answer.message })); }
    children.push(el("button", { type: "button", class: "kb-btn kb-btn-2", text: "Back to help", on: { click: goHome } }));
    return view("sent", "Thanks, we've got your message", children);
  }

  // ---------------------------------------------------------------- KB(): the shop's API

  function KB(command, arg) {
    try {
      if (command === "open") { open(); }
      else if (command === "close") { close(); }
      else if (command === "search") {
        open();
        const query = String(arg == null ? "" : arg).trim();
        if (query) { run(() => results(query)); }
      } else if (command === "suggest") {
        suggestSlugs = (Array.isArray(arg) ? arg : String(arg || "").split(",")).map((s) => String(s).trim()).filter(Boolean).slice(0, 10);
        const fresh = !!starting;
        open();
        goHome();
        if (fresh) { begin(true); fillHome(); }
      } else if (command === "identify") {
        const who = arg && typeof arg === "object" ? arg : {};
        if (start) { identify(who); } else { pendingIdentity = who; }  // sent when the widget first opens
      }
    } catch (error) { report(error); }
  }
  KB.kbWidget = true;

  function init() {
    try {
      const queued = (window.KB && window.KB.q) || [];
      window.KB = KB;
      mount();
      [].slice.call(queued).forEach((args) => KB.apply(null, [].slice.call(args)));
      if (OPEN_AT_ONCE) { open(); }
    } catch (error) { report(error); }
  }

  if (document.body) { init(); } else { document.addEventListener("DOMContentLoaded", init); }
})();
