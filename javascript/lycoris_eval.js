// sd-webui-lycoris-eval: an "Evaluate" button next to the txt2img results. It opens the
// LyCORIS Eval tab with "Last X/Y/Z grid" selected. No page globals: one IIFE, prefixed ids.
(function () {
    "use strict";
    var BUTTON_ID = "lycoris-eval-after-xyz";

    function app() {
        return typeof gradioApp === "function" ? gradioApp() : document;
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
        button.className = "lg secondary gradio-button lycoris-eval-button";
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
