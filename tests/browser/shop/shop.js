// The shop's own script: the widget's queue stub, as the help centre's README tells shops to write it, and calls
// made before widget.js has loaded. The identity is not signed: the widget must prefill nothing from it.
window.KB = window.KB || function () { (KB.q = KB.q || []).push(arguments); };
KB('identify', { name: 'Mallory Unsigned', email: 'mallory@example.com', signature: 'not-a-signature' });
