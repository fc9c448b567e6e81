// Light, dark, or the browser's choice ("system"), kept in localStorage.
export type Theme = "system" | "light" | "dark";

export function storedTheme(): Theme {
  const t = localStorage.getItem("cp-theme");
  return t === "light" || t === "dark" ? t : "system";
}

export function applyTheme(t: Theme) {
  if (t === "system") {
    document.documentElement.removeAttribute("data-theme");
    localStorage.removeItem("cp-theme");
  } else {
    document.documentElement.setAttribute("data-theme", t);
    localStorage.setItem("cp-theme", t);
  }
}
