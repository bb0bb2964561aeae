// Progressive enhancement only: every feature also works without this file.
(function () {
  "use strict";

  // Public pages are the same for every visitor: their CSRF token (and vote) comes from /visitor.json,
  // asked once, when an article page opens or the first time something is sent.
  var meta = document.querySelector('meta[name="csrf-token"]');
  var article = document.querySelector("[data-article]");
  var visitorState = null;

  function visitor() {
    if (!visitorState) {
      var params = new URLSearchParams({ referrer: document.referrer });
      if (article) { params.set("article", article.getAttribute("data-article")); }
      visitorState = fetch("/visitor.json?" + params.toString(), {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) { throw new Error("Sorry, we couldn't reach the help centre. Please try again."); }
        return response.json();
      });
      visitorState.catch(function () { visitorState = null; });  // ask again next time
    }
    return visitorState;
  }

  function token() {
    return meta ? Promise.resolve(meta.content) : visitor().then(function (state) { return state.csrf_token; });
  }

  function post(url, data) {
    return token().then(function (csrf) {
      var body = new FormData();
      Object.keys(data).forEach(function (key) { body.append(key, data[key]); });
      return fetch(url, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Accept": "application/json", "X-Requested-With": "fetch" }
      });
    });
  }

  // Instant search: an ARIA 1.2 combobox with a listbox of suggested articles.
  function Combobox(input) {
    var list = document.getElementById(input.getAttribute("aria-controls"));
    var form = input.form;
    var items = [];
    var active = -1;
    var timer = null;
    var controller = null;
    var lastQuery = "";

    function close() {
      list.hidden = true;
      list.innerHTML = "";
      items = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      items.forEach(function (item, i) { item.el.setAttribute("aria-selected", i === index ? "true" : "false"); });
      active = index;
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", items[index].el.id);
        items[index].el.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function open(item, position) {
      if (item.all) { window.location.href = item.url; return; }  // the results page records the search
      // Record the pick before leaving (the token may have to be fetched first), but never wait long.
      var leave = function () { window.location.href = item.url; };
      var timer = setTimeout(leave, 400);
      post("/search/picked", { q: lastQuery, slug: item.slug, position: position })
        .catch(function () {}).then(function () { clearTimeout(timer); leave(); });
    }

    function show(hits, answer, query, total) {
      list.innerHTML = "";
      if (answer) {  // the answer itself first: the section it comes from is one Enter away
        hits = [{ title: answer.text, section: "Answer from " + answer.title, slug: answer.slug, url: answer.url,
                  answer: true }].concat(hits);
      }
      if (hits.length) {  // last: every result on the search page, as Enter on the box would
        var all = new URLSearchParams({ q: query });
        var scope = form && form.querySelector('input[name="category"]');
        if (scope) { all.set("category", scope.value); }
        hits = hits.concat([{ title: total > 1 ? "See all " + total + " results for “" + query + "”" : "See the results for “" + query + "”",
                              url: "/search?" + all.toString(), all: true }]);
      }
      items = hits.map(function (hit, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.textContent = hit.title;
        if (hit.answer) { li.className = "suggestion-answer"; }
        if (hit.all) { li.className = "suggestion-all"; li.setAttribute("data-kb", "see-all"); }
        if (hit.section) {
          var small = document.createElement("small");
          small.textContent = hit.section;
          li.appendChild(small);
        }
        var item = { el: li, slug: hit.slug, url: hit.url, all: hit.all };
        li.addEventListener("mousedown", function (event) { event.preventDefault(); });
        li.addEventListener("click", function () { open(item, i + 1); });
        list.appendChild(li);
        return item;
      });
      active = -1;
      if (items.length) {
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
      } else {
        close();
      }
    }

    function fetchSuggestions() {
      var query = input.value.trim();
      if (query.length < 2) { close(); return; }
      if (controller) { controller.abort(); }
      controller = new AbortController();
      var params = new URLSearchParams({ q: query, limit: "6" });
      var category = form && form.querySelector('input[name="category"]');
      if (category) { params.set("category", category.value); }
      fetch("/api/search?" + params.toString(), { signal: controller.signal, headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { hits: [] }; })
        .then(function (data) {
          lastQuery = query;
          if (input.value.trim() === query) { show(data.hits || [], data.answer, query, data.total || 0); }
        })
        .catch(function () {});
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(fetchSuggestions, 180);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") {
        if (list.hidden) { fetchSuggestions(); return; }
        event.preventDefault();
        highlight(items.length ? (active + 1) % items.length : -1);
      } else if (event.key === "ArrowUp") {
        if (list.hidden) { return; }
        event.preventDefault();
        highlight(active <= 0 ? items.length - 1 : active - 1);
      } else if (event.key === "Enter") {
        if (!list.hidden && active >= 0) {
          event.preventDefault();
          open(items[active], active + 1);
        }
      } else if (event.key === "Escape") {
        if (!list.hidden) { event.preventDefault(); close(); }
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  // Send a vote form's data; its JSON answer, or its error message shown in ``status``.
  function submit(url, data, status) {
    return post(url, data).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error((body.error && body.error.message) || "Sorry, that didn't work."); }
        return body;
      });
    }).catch(function (error) {
      status.textContent = error.message || "Sorry, we couldn't save that. Please try again.";
      throw error;
    });
  }

  // "Was this helpful?": vote without a reload; "No" turns the question into the reason form, in place.
  function Feedback(section) {
    var voteForm = section.querySelector(".feedback-vote");
    var reasonForm = section.querySelector(".feedback-reason");
    var status = section.querySelector(".feedback-status");
    var contact = section.querySelector(".feedback-contact");
    var buttons = voteForm.querySelectorAll("button[name=helpful]");
    var url = voteForm.getAttribute("data-action");

    function send(data) { return submit(url, data, status); }

    function pressed(helpful) {
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", b.value === helpful ? "true" : "false"); });
    }

    function askWhy() {
      voteForm.hidden = true;
      reasonForm.hidden = false;
      status.textContent = "";
      reasonForm.querySelector("input[type=radio]").focus();
    }

    visitor().then(function (state) {  // the visitor's own vote: the page itself is everybody's
      reasonForm.elements.csrf_token.value = state.csrf_token;
      if (!state.vote) { return; }
      pressed(state.vote.helpful ? "yes" : "no");
      status.textContent = "You said this article " + (state.vote.helpful ? "helped" : "didn't help") +
        ". You can change your answer.";
      contact.hidden = state.vote.helpful;
    }).catch(function () {});

    voteForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var helpful = event.submitter ? event.submitter.value : "yes";
      send({ helpful: helpful }).then(function (body) {
        pressed(helpful);
        contact.hidden = helpful !== "no";
        if (helpful === "no") { askWhy(); } else { status.textContent = body.message; }
      }).catch(function () {});  // submit showed the error
    });

    reasonForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = { helpful: "no", comment: reasonForm.elements.comment.value };
      var checked = reasonForm.querySelector("input[name=reason]:checked");
      if (checked) { data.reason = checked.value; }
      send(data).then(function (body) {
        reasonForm.hidden = true;
        voteForm.hidden = false;
        status.textContent = body.message;
      }).catch(function () {});
    });
  }

  // "Was this answer helpful?" above the results: vote without a reload.
  function AnswerFeedback(form) {
    var status = form.querySelector(".answer-status");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = {};
      new FormData(form).forEach(function (value, key) { data[key] = value; });
      data.helpful = event.submitter ? event.submitter.value : "yes";
      submit(form.action, data, status).then(function (body) {
        form.querySelectorAll("button[name=helpful]").forEach(function (b) {
          b.setAttribute("aria-pressed", b.value === data.helpful ? "true" : "false");
        });
        status.textContent = body.message;
      }).catch(function () {});  // submit showed the error
    });
  }

  // Heading anchors copy the section's deep link.
  function CopyLinks(article) {
    var status = document.querySelector("[data-copy-status]");
    article.querySelectorAll("a.anchor").forEach(function (link) {
      link.setAttribute("role", "button");
      link.setAttribute("aria-label", "Copy link to section: " + link.parentElement.textContent.replace(/#$/, "").trim());
      link.addEventListener("click", function (event) {
        var url = window.location.origin + window.location.pathname + link.getAttribute("href");
        if (!navigator.clipboard) { return; }
        event.preventDefault();
        history.replaceState(null, "", link.getAttribute("href"));
        navigator.clipboard.writeText(url).then(function () {
          link.setAttribute("data-copied", "");
          if (status) { status.textContent = "Link copied: " + url; }
          setTimeout(function () { link.removeAttribute("data-copied"); }, 2000);
        });
      });
    });
  }

  // Contact form: while the customer types, show up to three articles that may answer them.
  function Deflection(form) {
    var box = form.querySelector("[data-suggestions]");
    var list = box.querySelector("ul");
    var fields = form.querySelectorAll("[data-deflect]");
    var confirm = form.querySelector('input[name="confirm"]');
    var timer = null;
    var controller = null;

    function update() {
      var subject = form.elements.subject.value.trim();
      var query = (subject + " " + form.elements.message.value.trim().slice(0, 300)).trim();
      if (query.length < 4) { box.hidden = true; return; }
      if (controller) { controller.abort(); }
      controller = new AbortController();
      fetch("/api/search?" + new URLSearchParams({ q: query, limit: "3" }).toString(),
            { signal: controller.signal, headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { hits: [] }; })
        .then(function (data) {
          list.innerHTML = "";
          if (data.answer) {  // the answer itself, quoted from its section, above the articles
            var answer = document.createElement("li");
            answer.className = "suggestion-answer";
            var text = document.createElement("p");
            text.textContent = data.answer.text;
            var from = document.createElement("a");
            from.href = "/contact/open/" + encodeURIComponent(data.answer.slug) + "?" +
              new URLSearchParams({ q: subject || query, anchor: data.answer.anchor }).toString();
            from.target = "_blank";
            from.rel = "noopener";
            from.textContent = "From " + data.answer.title + (data.answer.section ? " › " + data.answer.section : "");
            answer.appendChild(text);
            answer.appendChild(from);
            list.appendChild(answer);
          }
          (data.hits || []).forEach(function (hit) {
            var li = document.createElement("li");
            var a = document.createElement("a");
            a.href = "/contact/open/" + encodeURIComponent(hit.slug) + "?" + new URLSearchParams({ q: subject || query }).toString();
            a.target = "_blank";
            a.rel = "noopener";
            a.textContent = hit.title;
            li.appendChild(a);
            if (hit.summary) {
              var p = document.createElement("p");
              p.textContent = hit.summary;
              li.appendChild(p);
            }
            list.appendChild(li);
          });
          box.hidden = !list.children.length;
          // The customer has seen the suggestions: no second page of them after sending.
          if (list.children.length && confirm) { confirm.value = "1"; }
        })
        .catch(function () {});
    }

    fields.forEach(function (field) {
      field.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(update, 400); });
    });
  }

  // Staff: buttons that copy a field's text (deep links, reply snippets, article stubs).
  function copyButtons() {
    var status = document.querySelector("[data-copy-status]");
    document.querySelectorAll("[data-copy-from]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy-from"));
        var text = source.value;
        var done = function () {
          var label = button.textContent;
          button.textContent = "Copied";
          if (status) { status.textContent = "Copied: " + text.split("\n")[0]; }
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard) {
          navigator.clipboard.writeText(text).then(done, function () { source.select(); });
        } else {
          source.select();
        }
      });
    });
    var finder = document.querySelector("[data-link-finder]");
    if (finder) {
      finder.addEventListener("keydown", function (event) {
        var first = document.querySelector("[data-link-result] [data-copy-from]");
        if (event.key === "ArrowDown" && first) { event.preventDefault(); first.focus(); }
      });
    }
  }

  copyButtons();
  document.querySelectorAll("input[data-suggest]").forEach(function (input) { Combobox(input); });
  document.querySelectorAll("[data-contact]").forEach(function (form) { Deflection(form); });
  document.querySelectorAll("[data-feedback]").forEach(function (section) { Feedback(section); });
  document.querySelectorAll("[data-kb=answer-feedback]").forEach(function (form) { AnswerFeedback(form); });
  document.querySelectorAll("[data-article]").forEach(function (article) { CopyLinks(article); });
})();
