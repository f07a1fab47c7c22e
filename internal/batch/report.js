// Sorts the accounts table by the column whose heading is clicked, and by
// the URL's fragment (#sort=name, #sort=-bytes) when the page opens. Each
// cell carries the value it sorts by in data-v; rows equal on the column
// keep the page's order (by status, then name). When it is wired up it
// marks <body data-script="ready">; after each sort, data-sorted names it.
(function () {
	"use strict";
	var table = document.getElementById("accounts");
	if (!table || !table.tBodies.length) {
		document.body.setAttribute("data-script", "ready");
		return;
	}
	var heads = table.tHead.rows[0].cells;
	var body = table.tBodies[0];

	function column(key) {
		for (var i = 0; i < heads.length; i++) {
			if (heads[i].getAttribute("data-key") === key) {
				return i;
			}
		}
		return -1;
	}

	function compare(x, y, numeric) {
		if (numeric) {
			return parseFloat(x) - parseFloat(y);
		}
		x = x.toLowerCase();
		y = y.toLowerCase();
		return x < y ? -1 : x > y ? 1 : 0;
	}

	function sortBy(key, descending) {
		var col = column(key);
		if (col < 0) {
			return;
		}
		var numeric = heads[col].getAttribute("data-type") === "number";
		var rows = Array.prototype.slice.call(body.rows);
		rows.sort(function (a, b) {
			var c = compare(a.cells[col].getAttribute("data-v"), b.cells[col].getAttribute("data-v"), numeric);
			if (descending) {
				c = -c;
			}
			return c || (parseInt(a.getAttribute("data-order"), 10) - parseInt(b.getAttribute("data-order"), 10));
		});
		for (var i = 0; i < rows.length; i++) {
			body.appendChild(rows[i]);
		}
		for (var j = 0; j < heads.length; j++) {
			heads[j].removeAttribute("aria-sort");
		}
		heads[col].setAttribute("aria-sort", descending ? "descending" : "ascending");
		document.body.setAttribute("data-sorted", (descending ? "-" : "") + key);
	}

	function sortByFragment() {
		var m = /^#sort=(-?)([a-z_]+)$/.exec(window.location.hash);
		if (m) {
			sortBy(m[2], m[1] === "-");
		}
	}

	Array.prototype.forEach.call(heads, function (th) {
		var button = th.querySelector("button");
		if (!button) {
			return;
		}
		button.addEventListener("click", function () {
			var key = th.getAttribute("data-key");
			sortBy(key, th.getAttribute("aria-sort") === "ascending");
		});
	});
	window.addEventListener("hashchange", sortByFragment);
	sortByFragment();
	document.body.setAttribute("data-script", "ready");
})();
