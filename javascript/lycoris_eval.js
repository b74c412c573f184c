// sd-webui-lycoris-eval: an "Evaluate" button next to the txt2img results. It opens the
// LyCORIS Eval tab with "Last X/Y/Z grid" selected. No page globals: one IIFE, prefixed ids.
(function () {
    "use strict";
    var BUTTON_ID = "lycoris-eval-after-xyz";
    var FALLBACK_CLASSES = ["lg", "secondary", "gradio-button"];

    function app() {
        return typeof gradioApp === "function" ? gradioApp() : document;
    }

    // The host's own button classes (size, "secondary", "gradio-button" and the Svelte scope
    // class, e.g. "svelte-cmf5ev" in WebUI v1.10.1), copied from a button next to the results
    // so ours looks like theirs; the hash is never hard-coded.
    function hostButtonClasses(root) {
        var sibling = root.querySelector("#image_buttons_txt2img button:not(#" + BUTTON_ID + ")") ||
            root.querySelector("#txt2img_results button:not(#" + BUTTON_ID + ")");
        var classes = FALLBACK_CLASSES.slice();
        if (sibling) {
            var own = sibling.classList;
            for (var i = 0; i < own.length; i++) {
                var name = own[i];
                var scoped = name.indexOf("svelte-") === 0;
                var size = name === "lg" || name === "sm";
                if ((scoped || size) && classes.indexOf(name) < 0) {
                    classes.push(name);
                }
            }
            if (classes.indexOf("sm") >= 0) {
                classes.splice(classes.indexOf("lg"), 1);
            }
        }
        classes.push("lycoris-eval-button");
        return classes.join(" ");
    }

    function openTabWithLastGrid() {
        var root = app();
        var tabButtons = root.querySelectorAll("#tabs > .tab-nav > button, #tabs > div > button");
        for (var i = 0; i < tabButtons.length; i++) {
            if (tabButtons[i].textContent.trim() === "LyCORIS Eval") {
                tabButtons[i].click();
                break;
            }
        }
        var radio = root.querySelector('#lycoris-eval-source input[value="Last X/Y/Z grid"]');
        if (radio) {
            radio.click();
        }
        // when the radio was already selected no change event fires: refresh the grid's summary
        setTimeout(function () {
            var refresh = app().querySelector("#lycoris-eval-refresh-runs");
            if (refresh) {
                refresh.click();
            }
        }, 300);
    }

    function addButton() {
        var root = app();
        if (root.querySelector("#" + BUTTON_ID)) {
            return true;
        }
        var anchor = root.querySelector("#image_buttons_txt2img") || root.querySelector("#txt2img_results");
        if (!anchor) {
            return false;
        }
        var button = document.createElement("button");
        button.id = BUTTON_ID;
        button.className = hostButtonClasses(root);
        button.type = "button";
        button.textContent = "Evaluate";
        button.title = "Score the last X/Y/Z plot grid in the LyCORIS Eval tab";
        button.addEventListener("click", openTabWithLastGrid);
        anchor.appendChild(button);
        return true;
    }

    if (typeof onUiLoaded === "function") {
        onUiLoaded(addButton);
    } else {
        document.addEventListener("DOMContentLoaded", function () {
            var tries = 0;
            var timer = setInterval(function () {
                if (addButton() || ++tries > 100) {
                    clearInterval(timer);
                }
            }, 200);
        });
    }
})();
