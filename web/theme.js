// The light/dark toggle shared by the talk page and the admin page: a #theme button, the choice kept.
"use strict";
document.getElementById("theme").onclick = () => {
  const root = document.documentElement;
  const dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = dark ? "light" : "dark";
  localStorage.setItem("tara-theme", root.dataset.theme);
};
if (localStorage.getItem("tara-theme")) document.documentElement.dataset.theme = localStorage.getItem("tara-theme");
