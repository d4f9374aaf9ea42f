// The version reported by `sockswitch version` and the API (kept equal to package.json's).
export const VERSION = "0.1.0";
