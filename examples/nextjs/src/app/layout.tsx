import '@scriptrunner/react/styles.css';
import type { ReactNode } from 'react';
import './globals.css';

export const metadata = { title: 'Dashboard — Sandbox' };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
